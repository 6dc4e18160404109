// The one logging path. Lines go to stderr (or the file given to SetLogFile once a daemon detaches), one
// write(2) per line so lines from many threads never interleave. The level is checked before formatting.
//
// Thread safety: all functions may be called from any thread. The log level and sink are process-wide
// settings (set once at start-up by the CLI), the single exception to "no mutable globals".
#pragma once

#include <fmt/format.h>

#include <string>
#include <string_view>

namespace lazyfs {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);
// Redirects log lines to a file (append). Returns false if it cannot be opened (lines keep going to stderr).
bool SetLogFile(const std::string& path);
// Parses "debug", "info", "warn", "error", "off".
bool ParseLogLevel(std::string_view text, LogLevel* level);
// The level's name as ParseLogLevel reads it (and log lines show it): "debug" ... "off".
const char* LogLevelName(LogLevel level);

void LogLine(LogLevel level, std::string_view message);

template <class... Args>
void Log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
  if (!LogEnabled(level)) return;
  LogLine(level, fmt::format(format, std::forward<Args>(args)...));
}

template <class... Args>
void LogDebug(fmt::format_string<Args...> f, Args&&... a) { Log(LogLevel::kDebug, f, std::forward<Args>(a)...); }
template <class... Args>
void LogInfo(fmt::format_string<Args...> f, Args&&... a) { Log(LogLevel::kInfo, f, std::forward<Args>(a)...); }
template <class... Args>
void LogWarn(fmt::format_string<Args...> f, Args&&... a) { Log(LogLevel::kWarn, f, std::forward<Args>(a)...); }
template <class... Args>
void LogError(fmt::format_string<Args...> f, Args&&... a) { Log(LogLevel::kError, f, std::forward<Args>(a)...); }

}  // namespace lazyfs
