// Parsing, printing and evaluating environment markers (see marker.h).
//
// The parser is a hand-written recursive descent over packaging's grammar (packaging/_parser.py):
//   marker     = atom (BOOLOP atom)*
//   atom       = WS? ( "(" WS? marker WS? ")" | comparison ) WS?
//   comparison = operand WS? op WS? operand
//   operand    = VARIABLE | QUOTED_STRING
//   op         = "in" | "not" WS "in" | "===" | "==" | "~=" | "!=" | "<=" | ">=" | "<" | ">"
// where WS is spaces and tabs only, and the words (variables, and/or, in, not) must end at a regex word
// boundary, so `"3"and` is two tokens while `python_versionX` is none.
//
// Thread safety: free functions on values, reentrant.
#include "pkg/marker.h"

#include <fmt/format.h>

#include <array>
#include <optional>
#include <utility>

#include "pkg/names.h"
#include "pkg/python_literal.h"
#include "pkg/specifier.h"

namespace lazyfs::pkg {
namespace {

// Deeper nesting is refused rather than risking the stack on hostile input. packaging itself gives up
// (RecursionError) just short of 500 levels; no real marker comes near either limit.
constexpr int kMaxNesting = 256;

// The spellings the VARIABLE token accepts, and the variable each stands for.
struct VariableSpelling {
  std::string_view spelling;
  std::string_view name;
};
constexpr std::array<VariableSpelling, 20> kVariables{{
    {"python_version", "python_version"},
    {"python_full_version", "python_full_version"},
    {"os_name", "os_name"},
    {"os.name", "os_name"},
    {"sys_platform", "sys_platform"},
    {"sys.platform", "sys_platform"},
    {"platform_release", "platform_release"},
    {"platform_system", "platform_system"},
    {"platform_version", "platform_version"},
    {"platform.version", "platform_version"},
    {"platform_machine", "platform_machine"},
    {"platform.machine", "platform_machine"},
    {"platform_python_implementation", "platform_python_implementation"},
    {"platform.python_implementation", "platform_python_implementation"},
    {"python_implementation", "platform_python_implementation"},
    {"implementation_name", "implementation_name"},
    {"implementation_version", "implementation_version"},
    {"extra", "extra"},
    {"extras", "extras"},
    {"dependency_groups", "dependency_groups"},
}};

// Longest first where one operator is a prefix of another.
constexpr std::array<std::pair<std::string_view, MarkerOp>, 8> kComparisonOps{{
    {"===", MarkerOp::kArbitrary},
    {"==", MarkerOp::kEqual},
    {"~=", MarkerOp::kCompatible},
    {"!=", MarkerOp::kNotEqual},
    {"<=", MarkerOp::kLessEqual},
    {">=", MarkerOp::kGreaterEqual},
    {"<", MarkerOp::kLess},
    {">", MarkerOp::kGreater},
}};

bool IsSetVariable(std::string_view name) { return name == "extras" || name == "dependency_groups"; }

bool IsVersionVariable(std::string_view name) {
  return name == "python_version" || name == "python_full_version" || name == "implementation_version" ||
         name == "platform_release";
}

// A regex word character. Bytes of non-ASCII characters count as word characters: no token may follow
// a word with one anyway, so either choice refuses the same inputs.
bool IsWordByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

class MarkerParser {
 public:
  explicit MarkerParser(std::string_view text) : text_(text) {}

  Result<MarkerExpression> ParseAll() {
    MarkerExpression expression = LAZYFS_TRY(ParseExpression(0));
    if (pos_ != text_.size()) return SyntaxError("'and', 'or' or the end of the marker");
    return expression;
  }

 private:
  Result<MarkerExpression> ParseExpression(int depth) {
    MarkerExpression expression;
    expression.atoms.push_back(LAZYFS_TRY(ParseAtom(depth)));
    for (;;) {
      MarkerBoolOp op;
      if (ConsumeWord("or")) {
        op = MarkerBoolOp::kOr;
      } else if (ConsumeWord("and")) {
        op = MarkerBoolOp::kAnd;
      } else {
        break;
      }
      expression.ops.push_back(op);
      expression.atoms.push_back(LAZYFS_TRY(ParseAtom(depth)));
    }
    return expression;
  }

  Result<MarkerAtom> ParseAtom(int depth) {
    SkipWs();
    MarkerAtom atom;
    if (pos_ < text_.size() && text_[pos_] == '(') {
      if (depth == kMaxNesting) return SyntaxError(fmt::format("at most {} nested parentheses", kMaxNesting));
      size_t open = pos_++;
      SkipWs();
      MarkerExpression inner = LAZYFS_TRY(ParseExpression(depth + 1));
      SkipWs();
      if (pos_ == text_.size() || text_[pos_] != ')') {
        return SyntaxError(fmt::format("')' matching the '(' at column {}", open + 1));
      }
      ++pos_;
      atom = MarkerGroup{std::make_shared<const MarkerExpression>(std::move(inner))};
    } else {
      atom = LAZYFS_TRY(ParseComparison());
    }
    SkipWs();
    return atom;
  }

  Result<MarkerComparison> ParseComparison() {
    MarkerComparison comparison;
    comparison.left = LAZYFS_TRY(ParseOperand());
    SkipWs();
    comparison.op = LAZYFS_TRY(ParseOp());
    SkipWs();
    comparison.right = LAZYFS_TRY(ParseOperand());
    NormalizeExtraLiteral(comparison);
    return comparison;
  }

  // PEP 685 at parse time, as packaging does, so the printed marker and the evaluation agree: a literal
  // compared with `extra` (either side), or tested for membership in a set variable.
  static void NormalizeExtraLiteral(MarkerComparison& c) {
    using Kind = MarkerOperand::Kind;
    bool left_var = c.left.kind == Kind::kVariable;
    bool right_var = c.right.kind == Kind::kVariable;
    if (left_var && c.left.text == "extra" && !right_var) {
      c.right.text = NormalizeExtra(c.right.text);
    } else if (right_var && !left_var && (c.right.text == "extra" || IsSetVariable(c.right.text))) {
      c.left.text = NormalizeExtra(c.left.text);
    }
  }

  Result<MarkerOperand> ParseOperand() {
    std::string_view rest = text_.substr(pos_);
    for (const VariableSpelling& v : kVariables) {
      if (rest.starts_with(v.spelling) && BoundaryAt(pos_) && BoundaryAt(pos_ + v.spelling.size())) {
        pos_ += v.spelling.size();
        return MarkerOperand{MarkerOperand::Kind::kVariable, std::string(v.name)};
      }
    }
    if (!rest.empty() && (rest[0] == '"' || rest[0] == '\'')) {
      size_t close = rest.find(rest[0], 1);
      if (close != std::string_view::npos) {
        Result<std::string> value = DecodePythonStringLiteral(rest.substr(1, close - 1));
        if (!value) return std::move(value).error().Context(fmt::format("invalid marker \"{}\" at column {}", text_, pos_ + 1));
        pos_ += close + 1;
        return MarkerOperand{MarkerOperand::Kind::kLiteral, std::move(*value)};
      }
    }
    return SyntaxError("a marker variable or a quoted string");
  }

  Result<MarkerOp> ParseOp() {
    if (ConsumeWord("in")) return MarkerOp::kIn;
    if (ConsumeWord("not")) {
      if (!SkipWs()) return SyntaxError("whitespace after 'not'");
      if (!ConsumeWord("in")) return SyntaxError("'in' after 'not'");
      return MarkerOp::kNotIn;
    }
    for (const auto& [text, op] : kComparisonOps) {
      if (text_.substr(pos_).starts_with(text)) {
        pos_ += text.size();
        return op;
      }
    }
    return SyntaxError("a marker operator (<=, <, !=, ==, >=, >, ~=, ===, in, not in)");
  }

  // Spaces and tabs; whether there were any.
  bool SkipWs() {
    size_t start = pos_;
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    return pos_ != start;
  }

  // A regex `\b` at `at`: a word character on exactly one side.
  bool BoundaryAt(size_t at) const {
    bool before = at > 0 && IsWordByte(text_[at - 1]);
    bool after = at < text_.size() && IsWordByte(text_[at]);
    return before != after;
  }

  bool ConsumeWord(std::string_view word) {
    if (!text_.substr(pos_).starts_with(word) || !BoundaryAt(pos_) || !BoundaryAt(pos_ + word.size())) return false;
    pos_ += word.size();
    return true;
  }

  Error SyntaxError(std::string_view expected) const {
    return InvalidArgument(fmt::format("invalid marker \"{}\": expected {} at column {}", text_, expected, pos_ + 1));
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// --- printing -------------------------------------------------------------------------------------------

std::string Quote(std::string_view value) {
  if (value.find('"') == std::string_view::npos) return fmt::format("\"{}\"", value);
  if (value.find('\'') == std::string_view::npos) return fmt::format("'{}'", value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string FormatOperand(const MarkerOperand& operand) {
  return operand.kind == MarkerOperand::Kind::kVariable ? operand.text : Quote(operand.text);
}

std::string FormatComparison(const MarkerComparison& c) {
  return fmt::format("{} {} {}", FormatOperand(c.left), MarkerOpText(c.op), FormatOperand(c.right));
}

// packaging's _format_marker: a one-atom expression prints as its atom (so redundant parentheses
// vanish); a longer one is parenthesised unless it is the whole marker.
std::string FormatExpression(const MarkerExpression& expression, bool whole) {
  if (expression.atoms.size() == 1) {
    if (const auto* group = std::get_if<MarkerGroup>(&expression.atoms[0])) {
      return FormatExpression(*group->expression, whole);
    }
    return FormatComparison(std::get<MarkerComparison>(expression.atoms[0]));
  }
  std::string out = whole ? "" : "(";
  for (size_t i = 0; i < expression.atoms.size(); ++i) {
    if (i > 0) out += expression.ops[i - 1] == MarkerBoolOp::kAnd ? " and " : " or ";
    const MarkerAtom& atom = expression.atoms[i];
    if (const auto* group = std::get_if<MarkerGroup>(&atom)) {
      out += FormatExpression(*group->expression, false);
    } else {
      out += FormatComparison(std::get<MarkerComparison>(atom));
    }
  }
  if (!whole) out += ")";
  return out;
}

// --- evaluation -----------------------------------------------------------------------------------------

// A looked-up value: a string, or (for set variables) a set; exactly one is non-null.
struct EnvValue {
  std::optional<std::string> text;
  const std::set<std::string>* set = nullptr;
};

Result<EnvValue> Lookup(const MarkerEnvironment& env, std::string_view key) {
  if (auto it = env.values.find(key); it != env.values.end()) {
    std::string value = it->second;
    if (key == "extra") value = NormalizeExtra(value);
    // platform.python_version() of an untagged CPython build ends in "+", which is no PEP 440 version.
    if (key == "python_full_version" && value.ends_with('+')) value += "local";
    return EnvValue{std::move(value), nullptr};
  }
  if (auto it = env.sets.find(key); it != env.sets.end()) return EnvValue{std::nullopt, &it->second};
  return NotFound(fmt::format("marker variable {} is not in the environment", key));
}

Error UndefinedComparison(const MarkerComparison& c, std::string_view why) {
  return InvalidArgument(fmt::format("undefined marker comparison {}: {}", FormatComparison(c), why));
}

Result<bool> EvaluateComparison(const MarkerComparison& c, const MarkerEnvironment& env) {
  // packaging takes the environment key from the left variable, or else from the right-hand text, and
  // uses the other side's text as the value whatever it is.
  bool left_var = c.left.kind == MarkerOperand::Kind::kVariable;
  const std::string& key = left_var ? c.left.text : c.right.text;
  EnvValue looked_up = LAZYFS_TRY(Lookup(env, key));
  std::string lhs;
  EnvValue rhs;
  if (left_var) {
    if (!looked_up.text) return UndefinedComparison(c, "a set-valued variable works only as `\"name\" in " + key + "`");
    lhs = std::move(*looked_up.text);
    rhs.text = c.right.text;
  } else {
    lhs = c.left.text;
    rhs = std::move(looked_up);
  }

  std::set<std::string> normalized_set;
  if (IsSetVariable(key)) {  // PEP 685 / PEP 735: names compare normalised
    lhs = NormalizeExtra(lhs);
    if (rhs.text) {
      rhs.text = NormalizeExtra(*rhs.text);
    } else {
      for (const std::string& name : *rhs.set) normalized_set.insert(NormalizeExtra(name));
      rhs.set = &normalized_set;
    }
  }

  if (IsVersionVariable(key) && rhs.text) {
    Result<Specifier> spec = Specifier::Parse(std::string(MarkerOpText(c.op)) + *rhs.text);
    // Pre-releases always admitted: a marker asks about one version, not a choice among several.
    if (spec) return spec->MatchesText(lhs);
  }

  auto equal = [&] { return rhs.text ? lhs == *rhs.text : false; };
  auto member = [&] { return rhs.text ? rhs.text->find(lhs) != std::string::npos : rhs.set->contains(lhs); };
  switch (c.op) {
    case MarkerOp::kIn: return member();
    case MarkerOp::kNotIn: return !member();
    case MarkerOp::kEqual:
    case MarkerOp::kLessEqual:
    case MarkerOp::kGreaterEqual: return equal();
    case MarkerOp::kNotEqual: return !equal();
    case MarkerOp::kLess:
    case MarkerOp::kGreater: return false;
    case MarkerOp::kCompatible:
    case MarkerOp::kArbitrary: break;
  }
  return UndefinedComparison(c, std::string(MarkerOpText(c.op)) + " needs versions on both sides");
}

Result<bool> EvaluateExpression(const MarkerExpression& expression, const MarkerEnvironment& env) {
  // any(all(...) for each `or`-separated run), evaluating every atom so errors are never skipped.
  bool any = false;
  bool all = true;
  for (size_t i = 0; i < expression.atoms.size(); ++i) {
    if (i > 0 && expression.ops[i - 1] == MarkerBoolOp::kOr) {
      any = any || all;
      all = true;
    }
    const MarkerAtom& atom = expression.atoms[i];
    bool value = false;
    if (const auto* group = std::get_if<MarkerGroup>(&atom)) {
      value = LAZYFS_TRY(EvaluateExpression(*group->expression, env));
    } else {
      value = LAZYFS_TRY(EvaluateComparison(std::get<MarkerComparison>(atom), env));
    }
    all = all && value;
  }
  return any || all;
}

}  // namespace

std::string_view MarkerOpText(MarkerOp op) {
  switch (op) {
    case MarkerOp::kEqual: return "==";
    case MarkerOp::kNotEqual: return "!=";
    case MarkerOp::kLess: return "<";
    case MarkerOp::kLessEqual: return "<=";
    case MarkerOp::kGreater: return ">";
    case MarkerOp::kGreaterEqual: return ">=";
    case MarkerOp::kCompatible: return "~=";
    case MarkerOp::kArbitrary: return "===";
    case MarkerOp::kIn: return "in";
    case MarkerOp::kNotIn: return "not in";
  }
  return "?";
}

Result<Marker> Marker::Parse(std::string_view text) {
  MarkerExpression expression = LAZYFS_TRY(MarkerParser(text).ParseAll());
  return Marker(std::make_shared<const MarkerExpression>(std::move(expression)));
}

std::string Marker::ToString() const { return FormatExpression(*expression_, true); }

Result<bool> Marker::Evaluate(const MarkerEnvironment& environment) const {
  return EvaluateExpression(*expression_, environment);
}

}  // namespace lazyfs::pkg
