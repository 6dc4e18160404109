// Result<T> and Error: the one way errors travel inside lazyfs.
//
// Errors are values. errno becomes an Error once, where a syscall fails (PosixError), and only the FUSE
// adapters turn an Error back into an errno (ToErrno). An Error says whether retrying can help, so fetch/
// can own retries and everything above it never retries.
//
// Thread safety: plain values; copy freely.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace lazyfs {

enum class ErrorCode {
  kIo,               // local I/O failed
  kNotFound,         // a named thing (file, blob, tag, path) does not exist
  kCorrupt,          // bytes are malformed or fail their digest
  kInvalidArgument,  // the caller asked for something that makes no sense
  kUnsupported,      // well-formed but not something we handle
  kTimeout,          // a bounded wait ran out
  kNetwork,          // transport failure talking to a remote
  kPermission,       // denied (auth, EACCES)
  kNoSpace,          // disk or map full
  kInternal,         // a bug or an impossible state
  // File-system answers the FUSE adapter maps to their errno (ENOTDIR, EISDIR, EROFS, ENODATA).
  kNotADirectory,    // a directory operation on something else
  kIsADirectory,     // a file operation on a directory
  kReadOnly,         // a write to something that never changes
  kNoAttribute,      // the node exists, the extended attribute does not
};

const char* ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message, bool retryable = false)
      : code_(code), message_(std::move(message)), retryable_(retryable) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // True when the same operation may succeed if tried again (timeouts, resets, 5xx).
  bool retryable() const { return retryable_; }

  // Prefixes the message with where it happened: "layer sha256:ab..: " + message.
  Error&& Context(const std::string& where) && {
    message_ = where + ": " + message_;
    return std::move(*this);
  }
  Error& Context(const std::string& where) & {
    message_ = where + ": " + message_;
    return *this;
  }

  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
  bool retryable_;
};

// Result<T> is std::expected<T, Error> with [[nodiscard]] on the type, so ignoring a failure is a warning.
template <class T>
class [[nodiscard]] Result : public std::expected<T, Error> {
 public:
  using std::expected<T, Error>::expected;
  Result(Error error) : std::expected<T, Error>(std::unexpect, std::move(error)) {}  // NOLINT: implicit on purpose
};

using Status = Result<void>;

inline Status Ok() { return {}; }

// Error constructors, named after what went wrong.
inline Error IoError(std::string m) { return Error(ErrorCode::kIo, std::move(m)); }
inline Error NotFound(std::string m) { return Error(ErrorCode::kNotFound, std::move(m)); }
inline Error Corrupt(std::string m) { return Error(ErrorCode::kCorrupt, std::move(m)); }
inline Error InvalidArgument(std::string m) { return Error(ErrorCode::kInvalidArgument, std::move(m)); }
inline Error Unsupported(std::string m) { return Error(ErrorCode::kUnsupported, std::move(m)); }
inline Error Internal(std::string m) { return Error(ErrorCode::kInternal, std::move(m)); }
inline Error NotADirectory(std::string m) { return Error(ErrorCode::kNotADirectory, std::move(m)); }
inline Error IsADirectory(std::string m) { return Error(ErrorCode::kIsADirectory, std::move(m)); }
inline Error ReadOnly(std::string m) { return Error(ErrorCode::kReadOnly, std::move(m)); }
inline Error NoAttribute(std::string m) { return Error(ErrorCode::kNoAttribute, std::move(m)); }

// Turns the current errno (or `err`) into an Error that names the failed call: "open /x: No such file".
Error PosixError(int err, const std::string& what);

// The one mapping from Error to errno, used only at the FUSE boundary.
int ToErrno(const Error& error);

}  // namespace lazyfs

// Propagates an error from an expression returning Result<T>/Status; yields the value otherwise.
// A statement expression (GNU) keeps call sites short without exceptions.
#define LAZYFS_TRY(expr)                                        \
  ({                                                            \
    auto lazyfs_try_result_ = (expr);                           \
    if (!lazyfs_try_result_) return std::move(lazyfs_try_result_).error(); \
    std::move(lazyfs_try_result_).value();                      \
  })
