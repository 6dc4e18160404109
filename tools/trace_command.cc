// `lazyfs trace show|merge|replay|push`: look at, combine, replay and publish access traces (the format
// is documented in fs/trace.h).
//
//   show TRACE [--json]                    one line per access, or the whole trace as JSON
//   merge -o OUT TRACE...                  union of traces of one image, in first-access order
//   replay TRACE --image REF [--cache-dir DIR] [--json]
//       mounts REF (a `lazyfs mount` daemon of this binary, on a temporary mountpoint, with the given
//       cache), reads every traced range in order with readahead off (POSIX_FADV_RANDOM, so the kernel
//       asks for exactly the traced pages), and reports hits, misses and bytes fetched from the mount's
//       own counters (stats before and after) and the elapsed time — Slacker's repeat-run experiment.
//   push TRACE docker://HOST[:PORT]/NAME   stores the trace next to its image (fetch/trace_artifact.h);
//       the image is found by the manifest digest recorded in the trace.
//
// Thread safety: single-threaded CLI code.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/log.h"
#include "fetch/image_ref.h"
#include "fetch/registry_source.h"
#include "fetch/trace_artifact.h"
#include "fs/trace.h"
#include "run/control_socket.h"
#include "tools/commands.h"
#include "tools/source_flags.h"

namespace lazyfs::tools {
namespace {

int Fail(const std::string& what, const Error& error) {
  std::fprintf(stderr, "lazyfs: %s: %s\n", what.c_str(), error.ToString().c_str());
  return 1;
}

int RunShow(const std::string& path, bool json) {
  Result<fs::Trace> trace = fs::ReadTraceFile(path);
  if (!trace) return Fail("trace show", trace.error());
  if (json) {
    nlohmann::json records = nlohmann::json::array();
    for (const fs::TraceRecord& r : trace->records) {
      records.push_back({{"time_us", r.time_us}, {"path", trace->paths[r.file]}, {"offset", r.offset},
                         {"length", r.length}, {"miss", r.miss}, {"layer", r.layer}});
    }
    nlohmann::json out = {{"version", fs::kTraceVersion}, {"manifest_digest", trace->manifest_digest.ToString()},
                          {"image", trace->image}, {"files", trace->paths.size()}, {"records", records}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  std::printf("# image %s (%s), %zu files, %zu accesses\n", trace->image.c_str(),
              trace->manifest_digest.ToString().c_str(), trace->paths.size(), trace->records.size());
  std::printf("# time_us hit/miss layer offset length path\n");
  for (const fs::TraceRecord& r : trace->records) {
    std::printf("%lld %s %u %llu %llu /%s\n", static_cast<long long>(r.time_us), r.miss ? "miss" : "hit", r.layer,
                static_cast<unsigned long long>(r.offset), static_cast<unsigned long long>(r.length),
                trace->paths[r.file].c_str());
  }
  return 0;
}

int RunMerge(const std::string& out, const std::vector<std::string>& inputs) {
  std::vector<fs::Trace> traces;
  for (const std::string& in : inputs) {
    Result<fs::Trace> trace = fs::ReadTraceFile(in);
    if (!trace) return Fail("trace merge", trace.error());
    traces.push_back(std::move(*trace));
  }
  Result<fs::Trace> merged = fs::MergeTraces(traces);
  if (!merged) return Fail("trace merge", merged.error());
  if (Status written = fs::WriteTraceFile(out, *merged); !written) return Fail("trace merge", written.error());
  std::fprintf(stderr, "lazyfs: merged %zu traces: %zu accesses to %zu files -> %s\n", traces.size(),
               merged->records.size(), merged->paths.size(), out.c_str());
  return 0;
}

// ---------------------------------------------------------------------------------------------------
// replay

struct ReplayOptions {
  std::string trace;
  std::string image;
  std::string cache_dir;
  bool json = false;
};

Result<std::string> SelfExe() {
  std::error_code ec;
  std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) return PosixError(ec.value(), "readlink /proc/self/exe");
  return exe;
}

// Runs `argv` and waits; returns its exit status.
int RunChild(const std::vector<std::string>& argv) {
  // Built before fork: a child of a threaded process may only make async-signal-safe calls until exec.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Result<nlohmann::json> MountStats(const std::string& mountpoint) {
  std::string reply = LAZYFS_TRY(run::ControlRequest(run::ControlSocketPath(mountpoint), "stats"));
  nlohmann::json s = nlohmann::json::parse(reply, nullptr, false);
  if (s.is_discarded()) return Corrupt("malformed stats reply");
  return s;
}

// Reads the traced ranges through `mountpoint`; counts what failed.
struct ReplayReads {
  uint64_t ok = 0, failed = 0, missing = 0, bytes = 0;
};

ReplayReads ReadTracedRanges(const fs::Trace& trace, const std::string& mountpoint) {
  ReplayReads out;
  std::vector<UniqueFd> fds(trace.paths.size());
  std::vector<bool> tried(trace.paths.size(), false);
  std::vector<char> buffer;
  for (const fs::TraceRecord& r : trace.records) {
    if (!tried[r.file]) {
      tried[r.file] = true;
      int fd = ::open((mountpoint + "/" + trace.paths[r.file]).c_str(), O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        // Readahead off: the kernel then asks for the traced pages, not a window around them.
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
        fds[r.file] = UniqueFd(fd);
      }
    }
    if (!fds[r.file].valid()) {
      ++out.missing;
      continue;
    }
    if (buffer.size() < r.length) buffer.resize(r.length);
    ssize_t n = ::pread(fds[r.file].get(), buffer.data(), r.length, static_cast<off_t>(r.offset));
    if (n < 0) {
      ++out.failed;
    } else {
      ++out.ok;
      out.bytes += static_cast<uint64_t>(n);
    }
  }
  return out;
}

int RunReplay(const ReplayOptions& options) {
  Result<fs::Trace> trace = fs::ReadTraceFile(options.trace);
  if (!trace) return Fail("trace replay", trace.error());
  Result<std::string> exe = SelfExe();
  if (!exe) return Fail("trace replay", exe.error());
  std::string tmpl = TempRoot() + "/lazyfs-replay.XXXXXX";
  if (!::mkdtemp(tmpl.data())) return Fail("trace replay", PosixError(errno, "mkdtemp"));
  std::string workdir = tmpl;
  std::string mountpoint = workdir + "/mnt";
  std::string log_file = workdir + "/lazyfs.log";
  std::filesystem::create_directory(mountpoint);
  std::vector<std::string> mount_args = {*exe, "mount", "--log-file", log_file};
  if (!options.cache_dir.empty()) mount_args.insert(mount_args.end(), {"--cache-dir", options.cache_dir});
  mount_args.insert(mount_args.end(), {options.image, mountpoint});
  if (int rc = RunChild(mount_args); rc != 0) {
    std::fprintf(stderr, "lazyfs: trace replay: mounting %s failed (exit %d); log in %s\n", options.image.c_str(), rc,
                 log_file.c_str());
    return 1;
  }
  int rc = 0;
  Result<nlohmann::json> before = MountStats(mountpoint);
  auto started = std::chrono::steady_clock::now();
  ReplayReads reads = ReadTracedRanges(*trace, mountpoint);
  auto elapsed = std::chrono::steady_clock::now() - started;
  Result<nlohmann::json> after = MountStats(mountpoint);
  RunChild({*exe, "umount", mountpoint});
  if (!before || !after) {
    rc = Fail("trace replay: stats", before ? after.error() : before.error());
  } else {
    auto delta = [&](const char* key) { return (*after)[key].get<uint64_t>() - (*before)[key].get<uint64_t>(); };
    uint64_t hits = delta("chunk_hits");
    uint64_t misses = delta("chunk_misses");
    nlohmann::json report = {
        {"trace", options.trace},
        {"image", options.image},
        {"records", trace->records.size()},
        {"reads_ok", reads.ok},
        {"reads_failed", reads.failed},
        {"missing_files", reads.missing},
        {"bytes_read", reads.bytes},
        {"chunk_hits", hits},
        {"chunk_misses", misses},
        {"hit_ratio", hits + misses == 0 ? 1.0 : static_cast<double>(hits) / static_cast<double>(hits + misses)},
        {"fetches", delta("fetches")},
        {"bytes_fetched", delta("bytes_fetched")},
        {"elapsed_ms", std::chrono::duration<double, std::milli>(elapsed).count()},
    };
    if (options.json) {
      std::printf("%s\n", report.dump(2).c_str());
    } else {
      std::printf("replayed     %llu reads of %s (%llu failed, %llu on missing files) in %.1f ms\n",
                  static_cast<unsigned long long>(reads.ok), options.trace.c_str(),
                  static_cast<unsigned long long>(reads.failed), static_cast<unsigned long long>(reads.missing),
                  report["elapsed_ms"].get<double>());
      std::printf("chunk cache  %llu hits, %llu misses (%.1f%% hits)\n", static_cast<unsigned long long>(hits),
                  static_cast<unsigned long long>(misses), 100.0 * report["hit_ratio"].get<double>());
      std::printf("fetched      %llu bytes in %llu requests\n",
                  static_cast<unsigned long long>(report["bytes_fetched"].get<uint64_t>()),
                  static_cast<unsigned long long>(report["fetches"].get<uint64_t>()));
    }
    if (reads.failed) rc = 1;
  }
  // The daemon has unmounted; the mountpoint is an empty directory again (leave the log if we failed).
  std::error_code ec;
  if (rc == 0) std::filesystem::remove_all(workdir, ec);
  return rc;
}

// ---------------------------------------------------------------------------------------------------
// push

int RunPush(const std::string& trace_path, const std::string& dst, const SourceFlags& flags) {
  Result<fs::Trace> trace = fs::ReadTraceFile(trace_path);
  if (!trace) return Fail("trace push", trace.error());
  Result<fetch::ImageRef> ref = fetch::ImageRef::Parse(dst);
  if (!ref) return Fail("trace push", ref.error());
  if (ref->transport != fetch::ImageRef::Transport::kDocker) {
    return Fail("trace push", InvalidArgument("the destination must be docker://HOST/NAME"));
  }
  Result<fetch::SourceOptions> source = ToSourceOptions(flags);
  if (!source) return Fail("trace push", source.error());
  Result<std::shared_ptr<fetch::RegistryClient>> client = fetch::NewRegistryClient(ref->host, source->registry);
  if (!client) return Fail("trace push", client.error());
  // The subject is the manifest the trace was recorded on, whatever tag the destination names.
  Result<fetch::FetchedManifest> subject = (*client)->GetManifest(ref->repository, trace->manifest_digest.ToString());
  if (!subject) return Fail("trace push: image " + trace->manifest_digest.ToString(), subject.error());
  Result<Sha256Digest> pushed = fetch::PushTraceArtifact(**client, ref->repository, *subject, trace_path);
  if (!pushed) return Fail("trace push", pushed.error());
  std::printf("%s/%s:%s %s\n", ref->host.c_str(), ref->repository.c_str(),
              fetch::TraceArtifactTag(trace->manifest_digest).c_str(), pushed->ToString().c_str());
  return 0;
}

}  // namespace

void AddTraceCommand(CLI::App& app, int& exit_code) {
  CLI::App* trace = app.add_subcommand("trace", "Access traces: show, merge, replay, push (format in fs/trace.h)");
  trace->require_subcommand(1);

  struct ShowOptions {
    std::string trace;
    bool json = false;
  };
  auto show = std::make_shared<ShowOptions>();
  CLI::App* show_cmd = trace->add_subcommand("show", "Print a trace's accesses");
  show_cmd->add_option("trace", show->trace)->required();
  show_cmd->add_flag("--json", show->json, "the whole trace as JSON");
  show_cmd->callback([show, &exit_code] { exit_code = RunShow(show->trace, show->json); });

  struct MergeOptions {
    std::string out;
    std::vector<std::string> inputs;
  };
  auto merge = std::make_shared<MergeOptions>();
  CLI::App* merge_cmd = trace->add_subcommand("merge", "Union of traces of one image, in first-access order");
  merge_cmd->add_option("-o,--output", merge->out, "merged trace file")->required();
  merge_cmd->add_option("traces", merge->inputs)->required();
  merge_cmd->callback([merge, &exit_code] { exit_code = RunMerge(merge->out, merge->inputs); });

  auto replay = std::make_shared<ReplayOptions>();
  replay->cache_dir = DefaultCacheDir();
  CLI::App* replay_cmd = trace->add_subcommand("replay", "Replay a trace's reads on a mount; report hits and fetches");
  replay_cmd->add_option("trace", replay->trace)->required();
  replay_cmd->add_option("--image", replay->image, "the image to mount (oci:DIR[:TAG], docker://...)")->required();
  replay_cmd->add_option("--cache-dir", replay->cache_dir, "the cache state to replay against")->capture_default_str();
  replay_cmd->add_flag("--json", replay->json, "machine-readable report");
  replay_cmd->callback([replay, &exit_code] { exit_code = RunReplay(*replay); });

  struct PushOptions {
    std::string trace;
    std::string dst;
    SourceFlags flags;
  };
  auto push = std::make_shared<PushOptions>();
  CLI::App* push_cmd = trace->add_subcommand("push", "Store a trace next to its image in a registry");
  push_cmd->add_option("trace", push->trace)->required();
  push_cmd->add_option("destination", push->dst, "docker://HOST[:PORT]/NAME")->required();
  AddSourceFlags(*push_cmd, push->flags);
  push_cmd->callback([push, &exit_code] { exit_code = RunPush(push->trace, push->dst, push->flags); });
}

}  // namespace lazyfs::tools
