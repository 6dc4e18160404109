// The one rule for the names layers give their entries, shared by the union builder and the eStargz reader
// and writer, so that every part of fs/ agrees on which names are the same file and which are unsafe.
//
// Thread safety: a pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lazyfs::fs {

// Normalizes a layer entry name to a clean relative path: empty and "." components dropped, so
// "./a//b/./c/" -> "a/b/c" and "." or "./" -> "" (the layer's root). nullopt for names that would escape
// the root: an absolute path or any ".." component, even one that stays inside ("a/../b"): real tools
// never write one, and refusing them all is a rule no hostile layer can argue with. A component merely
// starting with dots ("..b", "...") is an ordinary name.
std::optional<std::string> NormalizeEntryName(std::string_view name);

}  // namespace lazyfs::fs
