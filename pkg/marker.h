// PEP 508 environment markers (`python_version >= "3.8" and extra == "socks"`): the parse tree, the
// canonical string `packaging` prints, and evaluation against an environment of marker variables.
//
// The rules are packaging's, quirks included, because a marker means what pip makes of it:
//   - Quoted values are Python string literals ("\x70osix" is "posix"); variables may be spelled with
//     dots (`os.name`) and `python_implementation` means `platform_python_implementation`.
//   - A literal compared with `extra`, or tested `in extras` / `in dependency_groups`, is PEP 685
//     normalised when parsed (`extra == "Foo_Bar"` is `extra == "foo-bar"`).
//   - Evaluation takes the environment value from the variable named on the LEFT, or, with a literal on
//     the left, from the name written on the right; the other side is used as written, even when it is
//     a variable (`os_name == os_name` compares the value with the text "os_name").
//   - The four version variables compare as PEP 440 versions when operator and right-hand text make a
//     valid specifier, else as strings: `==`/`!=` exact, `in`/`not in` substring, `<`/`>` false,
//     `<=`/`>=` equality, `~=`/`===` an error.
//   - `and` binds tighter than `or`; every comparison is evaluated (no short circuit), so an error
//     anywhere fails the whole marker.
//
// Thread safety: values. A Marker shares its immutable tree between copies; nothing is mutated after
// Parse, so copies may be used from any thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/result.h"

namespace lazyfs::pkg {

// What a marker is evaluated against. Keys are the canonical variable names ("os_name", never
// "os.name").
struct MarkerEnvironment {
  // String-valued variables: "python_version", "sys_platform", ..., and "extra" (core metadata sets it
  // to "" for a requirement asked for without extras).
  std::map<std::string, std::string, std::less<>> values;
  // Set-valued variables, "extras" and "dependency_groups" (lock files): only the membership form
  // (`"name" in extras`) can use them.
  std::map<std::string, std::set<std::string>, std::less<>> sets;
};

enum class MarkerOp { kEqual, kNotEqual, kLess, kLessEqual, kGreater, kGreaterEqual, kCompatible, kArbitrary, kIn, kNotIn };

std::string_view MarkerOpText(MarkerOp op);  // "==", "not in", ...

// One side of a comparison: a variable by its canonical name, or a literal's decoded value.
struct MarkerOperand {
  enum class Kind { kVariable, kLiteral };
  Kind kind = Kind::kLiteral;
  std::string text;
};

struct MarkerComparison {
  MarkerOperand left;
  MarkerOp op = MarkerOp::kEqual;
  MarkerOperand right;
};

struct MarkerExpression;

// A parenthesised expression.
struct MarkerGroup {
  std::shared_ptr<const MarkerExpression> expression;  // never null
};

using MarkerAtom = std::variant<MarkerComparison, MarkerGroup>;

enum class MarkerBoolOp { kAnd, kOr };

// Atoms joined left to right: ops[i] stands between atoms[i] and atoms[i + 1]. Kept as written, not
// flattened or re-associated, because the canonical string keeps the groups the text had.
struct MarkerExpression {
  std::vector<MarkerAtom> atoms;  // at least one
  std::vector<MarkerBoolOp> ops;  // atoms.size() - 1 of them
};

class Marker {
 public:
  // kInvalidArgument naming `text` and the column where it stops making sense. Spaces and tabs may stand
  // between tokens and around the whole; any other whitespace (a newline) is refused.
  static Result<Marker> Parse(std::string_view text);

  const MarkerExpression& expression() const { return *expression_; }

  // packaging's str(Marker): one space around operators and `and`/`or`, variables by canonical name,
  // values in double quotes (single quotes when the value holds a '"'), parentheses only around groups
  // of two or more atoms inside a larger expression. A value holding both quote characters, which
  // packaging cannot print, is written in double quotes with '"' and '\' backslash-escaped.
  std::string ToString() const;

  // Evaluates against `environment` as given, except that `extra` is PEP 685 normalised and a
  // `python_full_version` ending in '+' (an untagged CPython build) gets "local" appended.
  // kNotFound naming a variable the environment lacks; kInvalidArgument for an undefined comparison
  // (`~=` or `===` on values that are not versions, a set-valued variable outside `in`/`not in`).
  Result<bool> Evaluate(const MarkerEnvironment& environment) const;

 private:
  explicit Marker(std::shared_ptr<const MarkerExpression> expression) : expression_(std::move(expression)) {}

  std::shared_ptr<const MarkerExpression> expression_;  // never null
};

}  // namespace lazyfs::pkg
