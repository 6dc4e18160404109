#include "fs/union_tree.h"

#include <doctest/doctest.h>

#include <map>

namespace lazyfs::fs {
namespace {

LayerEntry Dir(std::string name, uint32_t mode = 0755) {
  LayerEntry e;
  e.name = std::move(name);
  e.type = EntryType::kDirectory;
  e.mode = mode;
  return e;
}

LayerEntry File(std::string name, uint64_t size = 0, uint32_t mode = 0644) {
  LayerEntry e;
  e.name = std::move(name);
  e.type = EntryType::kRegular;
  e.mode = mode;
  e.size = size;
  if (size > 0) e.chunks.push_back({0, size, Sha256Of(e.name), 0, 0});
  return e;
}

LayerEntry Link(std::string name, std::string target, EntryType type = EntryType::kHardlink) {
  LayerEntry e;
  e.name = std::move(name);
  e.type = type;
  e.link_target = std::move(target);
  return e;
}

LayerIndex Layer(std::vector<LayerEntry> entries) {
  LayerIndex l;
  l.entries = std::move(entries);
  return l;
}

struct Skips {
  std::vector<std::string> names;
  SkipReporter reporter() {
    return [this](uint32_t, const std::string& name, const std::string&) { names.push_back(name); };
  }
};

bool Exists(const UnionTree& t, std::string_view path) { return t.Resolve(path).has_value(); }

TEST_CASE("UnionTree: upper layers replace, whiteouts hide, opaque dirs clear lower content") {
  Skips skips;
  UnionTree t = UnionTree::Build(
      {Layer({Dir("./"), Dir("etc/"), File("etc/a", 1), File("etc/b", 2), Dir("opq/"), File("opq/low", 3),
              Dir("d2f/"), File("d2f/x", 1), File("f2d", 4)}),
       Layer({File("etc/.wh.a"), File("opq/.wh..wh..opq"), File("opq/high", 5), File("d2f", 6), Dir("f2d/"),
              File("f2d/y", 7), File("etc/b", 9)})},
      skips.reporter());
  CHECK(skips.names.empty());
  CHECK_FALSE(Exists(t, "etc/a"));
  CHECK_FALSE(Exists(t, "etc/.wh.a"));
  CHECK(t.Find(*t.Resolve("etc/b"))->size == 9);
  CHECK_FALSE(Exists(t, "opq/low"));
  CHECK(Exists(t, "opq/high"));
  CHECK_FALSE(Exists(t, "opq/.wh..wh..opq"));
  CHECK(t.Find(*t.Resolve("d2f"))->type == EntryType::kRegular);
  CHECK_FALSE(Exists(t, "d2f/x"));
  CHECK(t.Find(*t.Resolve("f2d"))->type == EntryType::kDirectory);
  CHECK(Exists(t, "f2d/y"));
}

TEST_CASE("UnionTree: an opaque marker hides only lower layers, whatever its position in the layer") {
  UnionTree t = UnionTree::Build({Layer({Dir("d/"), File("d/old", 1)}),
                                  Layer({Dir("d/"), File("d/new", 1), File("d/.wh..wh..opq")})},
                                 {});
  CHECK(Exists(t, "d/new"));
  CHECK_FALSE(Exists(t, "d/old"));
}

TEST_CASE("UnionTree: hardlinks share one inode and count nlink; directories count subdirectories") {
  UnionTree t = UnionTree::Build(
      {Layer({Dir("a/"), Dir("b/"), File("a/f", 10), Link("a/g", "a/f"), Link("b/h", "./a/f"), Dir("a/sub/")})}, {});
  uint64_t f = *t.Resolve("a/f");
  CHECK(*t.Resolve("a/g") == f);
  CHECK(*t.Resolve("b/h") == f);
  CHECK(t.Find(f)->nlink == 3);
  CHECK(t.Find(*t.Resolve("a"))->nlink == 3);  // ".", "..", "sub"
  CHECK(t.Find(kRootIno)->nlink == 4);         // a, b
  CHECK(t.total_file_bytes() == 10);           // the group counts once
}

TEST_CASE("UnionTree: unsafe names and dangling hardlinks are skipped and reported") {
  Skips skips;
  UnionTree t = UnionTree::Build({Layer({File("../escape", 1), File("/abs", 1), Link("x", "missing"), File("ok", 1)})},
                                 skips.reporter());
  CHECK(skips.names == std::vector<std::string>{"../escape", "/abs", "x"});
  CHECK(Exists(t, "ok"));
  CHECK(t.Find(kRootIno)->children.size() == 1);
}

TEST_CASE("UnionTree: missing parents become implicit directories; duplicates keep the later entry") {
  Skips skips;
  UnionTree t = UnionTree::Build({Layer({File("deep/er/file", 1), File("dup", 1), File("dup", 2)})}, skips.reporter());
  const Node* deep = t.Find(*t.Resolve("deep"));
  CHECK(deep->type == EntryType::kDirectory);
  CHECK(deep->mode == 0755);
  CHECK(t.Find(*t.Resolve("dup"))->size == 2);
  CHECK(skips.names == std::vector<std::string>{"dup"});
}

TEST_CASE("UnionTree: children are sorted, Lookup finds them, PathOf names them") {
  UnionTree t = UnionTree::Build({Layer({File("b", 1), File("a", 1), Dir("c/"), File("c/z", 1)})}, {});
  const Node* root = t.Find(kRootIno);
  REQUIRE(root->children.size() == 3);
  CHECK(root->children[0].name == "a");
  CHECK(root->children[2].name == "c");
  CHECK(t.Lookup(kRootIno, "b").has_value());
  CHECK_FALSE(t.Lookup(kRootIno, "nope").has_value());
  CHECK(t.PathOf(*t.Resolve("c/z")) == "/c/z");
  CHECK(t.PathOf(kRootIno) == "/");
}

TEST_CASE("UnionTree: Encode and Decode round-trip; corrupt encodings are rejected") {
  LayerEntry sym = Link("s", "/target", EntryType::kSymlink);
  LayerEntry dev;
  dev.name = "dev/null";
  dev.type = EntryType::kCharDevice;
  dev.dev_major = 1;
  dev.dev_minor = 3;
  LayerEntry f = File("f", 5, 04755);
  f.uid = 1234;
  f.gid = 5678;
  f.mtime_sec = -5;
  f.mtime_nsec = 7;
  f.xattrs = {{"user.a", std::string("\0\1", 2)}};
  UnionTree t = UnionTree::Build({Layer({sym, dev, f, Link("g", "f")})}, {});
  std::string encoded = t.Encode();
  auto back = UnionTree::Decode(encoded);
  REQUIRE(back);
  CHECK(back->Encode() == encoded);
  const Node* n = back->Find(*back->Resolve("f"));
  CHECK(n->mode == 04755);
  CHECK(n->uid == 1234);
  CHECK(n->mtime_sec == -5);
  CHECK(n->nlink == 2);
  CHECK(n->xattrs[0].second == std::string("\0\1", 2));
  CHECK(back->Find(*back->Resolve("dev/null"))->dev_minor == 3);
  CHECK(back->Find(*back->Resolve("s"))->link_target == "/target");
  for (size_t cut : {size_t{0}, size_t{3}, encoded.size() / 2, encoded.size() - 1}) {
    CHECK_FALSE(UnionTree::Decode(std::string_view(encoded).substr(0, cut)));
  }
  std::string bad = encoded;
  bad[4] = '\x01';  // node count 1: no root
  CHECK_FALSE(UnionTree::Decode(bad));
}

TEST_CASE("LayerIndex: Encode and Decode round-trip") {
  LayerIndex l = Layer({File("a", 3), Dir("d/")});
  l.lazy = false;
  l.prefetch = {"a"};
  l.uncompressed_size = 4096;
  std::string encoded = EncodeLayerIndex(l);
  auto back = DecodeLayerIndex(encoded);
  REQUIRE(back);
  CHECK(EncodeLayerIndex(*back) == encoded);
  CHECK_FALSE(back->lazy);
  CHECK(back->entries[0].chunks[0].digest == Sha256Of("a"));
  CHECK_FALSE(DecodeLayerIndex(std::string_view(encoded).substr(0, encoded.size() - 2)));
}

}  // namespace
}  // namespace lazyfs::fs
