#include "common/result.h"

#include <cerrno>
#include <cstring>

namespace lazyfs {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIo: return "io";
    case ErrorCode::kNotFound: return "not found";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kTimeout: return "timeout";
    case ErrorCode::kNetwork: return "network";
    case ErrorCode::kPermission: return "permission";
    case ErrorCode::kNoSpace: return "no space";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kNotADirectory: return "not a directory";
    case ErrorCode::kIsADirectory: return "is a directory";
    case ErrorCode::kReadOnly: return "read-only";
    case ErrorCode::kNoAttribute: return "no such attribute";
  }
  return "unknown";
}

std::string Error::ToString() const { return std::string(ErrorCodeName(code_)) + ": " + message_; }

Error PosixError(int err, const std::string& what) {
  ErrorCode code = ErrorCode::kIo;
  switch (err) {
    case ENOENT: code = ErrorCode::kNotFound; break;
    case EACCES:
    case EPERM: code = ErrorCode::kPermission; break;
    case ENOSPC:
    case EDQUOT: code = ErrorCode::kNoSpace; break;
    case EINVAL: code = ErrorCode::kInvalidArgument; break;
    case ETIMEDOUT: code = ErrorCode::kTimeout; break;
    case ENOTDIR: code = ErrorCode::kNotADirectory; break;
    case EISDIR: code = ErrorCode::kIsADirectory; break;
    case EROFS: code = ErrorCode::kReadOnly; break;
    case ENODATA: code = ErrorCode::kNoAttribute; break;
    default: break;
  }
  bool retryable = err == EINTR || err == EAGAIN || err == ETIMEDOUT;
  return Error(code, what + ": " + std::strerror(err), retryable);
}

int ToErrno(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kNotFound: return ENOENT;
    case ErrorCode::kInvalidArgument: return EINVAL;
    case ErrorCode::kPermission: return EACCES;
    case ErrorCode::kNoSpace: return ENOSPC;
    case ErrorCode::kUnsupported: return EOPNOTSUPP;
    case ErrorCode::kNotADirectory: return ENOTDIR;
    case ErrorCode::kIsADirectory: return EISDIR;
    case ErrorCode::kReadOnly: return EROFS;
    case ErrorCode::kNoAttribute: return ENODATA;
    // Everything that means "the bytes could not be produced correctly" is EIO to the reader.
    case ErrorCode::kIo:
    case ErrorCode::kCorrupt:
    case ErrorCode::kTimeout:
    case ErrorCode::kNetwork:
    case ErrorCode::kInternal: return EIO;
  }
  return EIO;
}

}  // namespace lazyfs
