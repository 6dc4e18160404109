#include "fs/trace.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>
#include <tuple>

#include "common/byte_codec.h"
#include "common/fd.h"
#include "common/log.h"

namespace lazyfs::fs {
namespace {

constexpr uint64_t kTagFile = 0;
constexpr uint64_t kTagAccess = 1;
constexpr uint64_t kFlagMiss = 1;
constexpr uint64_t kMaxPathBytes = 64 * 1024;
constexpr uint64_t kMaxLayers = 1 << 16;
constexpr int64_t kMaxTimeUs = int64_t{1} << 52;  // ~140 years: anything beyond is not a real trace

void EncodeHeader(ByteWriter& w, const Sha256Digest& digest, const std::string& image) {
  w.Fixed(kTraceMagic);
  w.U64(kTraceVersion);
  w.Bytes(digest.Raw());
  w.Bytes(image);
}

void EncodeFile(ByteWriter& w, uint64_t id, std::string_view path) {
  w.U64(kTagFile);
  w.U64(id);
  w.Bytes(path);
}

void EncodeAccess(ByteWriter& w, int64_t delta_us, const TraceRecord& r) {
  w.U64(kTagAccess);
  w.I64(delta_us);
  w.U64(r.file);
  w.U64(r.offset);
  w.U64(r.length);
  w.U64(r.miss ? kFlagMiss : 0);
  w.U64(r.layer);
}

}  // namespace

std::string EncodeTrace(const Trace& trace) {
  ByteWriter w;
  EncodeHeader(w, trace.manifest_digest, trace.image);
  std::vector<bool> defined(trace.paths.size(), false);
  uint64_t next_id = 0;
  std::vector<uint64_t> id_of(trace.paths.size());
  int64_t last = 0;
  for (const TraceRecord& r : trace.records) {
    // Ids in the file follow first use, so a trace with unused paths still encodes canonically.
    if (r.file < defined.size() && !defined[r.file]) {
      defined[r.file] = true;
      id_of[r.file] = next_id;
      EncodeFile(w, next_id++, trace.paths[r.file]);
    }
    TraceRecord copy = r;
    copy.file = static_cast<uint32_t>(r.file < id_of.size() ? id_of[r.file] : 0);
    EncodeAccess(w, r.time_us - last, copy);
    last = r.time_us;
  }
  return w.Take();
}

Result<Trace> DecodeTrace(std::string_view data) {
  if (data.size() < kTraceMagic.size() || data.substr(0, kTraceMagic.size()) != kTraceMagic) {
    return Corrupt("not a lazyfs trace (bad magic)");
  }
  ByteReader r(data.substr(kTraceMagic.size()));
  uint64_t version = LAZYFS_TRY(r.U64());
  if (version != kTraceVersion) return Unsupported("trace version " + std::to_string(version) + " is not 1");
  Trace trace;
  std::optional<Sha256Digest> digest = Sha256Digest::FromRaw(LAZYFS_TRY(r.Bytes()));
  if (!digest) return Corrupt("trace header: manifest digest is not 32 bytes");
  trace.manifest_digest = *digest;
  std::string_view image = LAZYFS_TRY(r.Bytes());
  if (image.size() > kMaxPathBytes) return Corrupt("trace header: image name too long");
  trace.image = std::string(image);
  int64_t time = 0;
  while (!r.AtEnd()) {
    uint64_t tag = LAZYFS_TRY(r.U64());
    if (tag == kTagFile) {
      uint64_t id = LAZYFS_TRY(r.U64());
      std::string_view path = LAZYFS_TRY(r.Bytes());
      if (id != trace.paths.size()) return Corrupt("trace: file ids out of order");
      if (path.empty() || path.size() > kMaxPathBytes || path.front() == '/' || path.find('\0') != path.npos) {
        return Corrupt("trace: bad file path");
      }
      trace.paths.emplace_back(path);
    } else if (tag == kTagAccess) {
      int64_t delta = LAZYFS_TRY(r.I64());
      TraceRecord rec;
      uint64_t file = LAZYFS_TRY(r.U64());
      rec.offset = LAZYFS_TRY(r.U64());
      rec.length = LAZYFS_TRY(r.U64());
      uint64_t flags = LAZYFS_TRY(r.U64());
      uint64_t layer = LAZYFS_TRY(r.U64());
      if (delta > kMaxTimeUs || delta < -kMaxTimeUs) return Corrupt("trace: time delta out of range");
      time += delta;
      if (time > kMaxTimeUs || time < -kMaxTimeUs) return Corrupt("trace: time out of range");
      if (file >= trace.paths.size()) return Corrupt("trace: access to an undefined file id");
      if (rec.offset > (uint64_t{1} << 62) || rec.length > (uint64_t{1} << 40)) {
        return Corrupt("trace: access range out of bounds");
      }
      if (flags & ~kFlagMiss) return Corrupt("trace: unknown access flags");
      if (layer >= kMaxLayers) return Corrupt("trace: layer index out of range");
      rec.time_us = time;
      rec.file = static_cast<uint32_t>(file);
      rec.miss = flags & kFlagMiss;
      rec.layer = static_cast<uint32_t>(layer);
      trace.records.push_back(rec);
    } else {
      return Corrupt("trace: unknown record tag " + std::to_string(tag));
    }
  }
  return trace;
}

Result<Trace> ReadTraceFile(const std::string& path) {
  std::string data = LAZYFS_TRY(ReadWholeFile(path));
  Result<Trace> trace = DecodeTrace(data);
  if (!trace) return std::move(trace).error().Context("trace " + path);
  return trace;
}

Status WriteTraceFile(const std::string& path, const Trace& trace) { return WriteFileAtomic(path, EncodeTrace(trace)); }

Result<Trace> MergeTraces(const std::vector<Trace>& traces) {
  if (traces.empty()) return InvalidArgument("no traces to merge");
  Trace out;
  out.manifest_digest = traces[0].manifest_digest;
  out.image = traces[0].image;
  struct Item {
    TraceRecord record;
    const std::string* path;
  };
  std::vector<Item> items;
  for (const Trace& t : traces) {
    if (t.manifest_digest != out.manifest_digest) {
      return InvalidArgument("traces of different images: " + out.manifest_digest.ToString() + " and " +
                             t.manifest_digest.ToString());
    }
    for (const TraceRecord& r : t.records) items.push_back({r, &t.paths.at(r.file)});
  }
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& a, const Item& b) { return a.record.time_us < b.record.time_us; });
  std::map<std::string_view, uint32_t> ids;
  std::set<std::tuple<uint32_t, uint64_t, uint64_t>> seen;
  for (const Item& item : items) {
    auto [it, fresh] = ids.try_emplace(*item.path, static_cast<uint32_t>(out.paths.size()));
    if (fresh) out.paths.push_back(*item.path);
    TraceRecord r = item.record;
    r.file = it->second;
    if (!seen.emplace(r.file, r.offset, r.length).second) continue;
    out.records.push_back(r);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------

Result<std::unique_ptr<TraceRecorder>> TraceRecorder::Open(const std::string& path, const UnionTree& tree,
                                                           const Sha256Digest& manifest_digest,
                                                           const std::string& image) {
  UniqueFd fd = LAZYFS_TRY(OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC));
  ByteWriter header;
  EncodeHeader(header, manifest_digest, image);
  LAZYFS_TRY(WriteAll(fd.get(), header.data(), path));
  return std::unique_ptr<TraceRecorder>(new TraceRecorder(path, std::move(fd), tree));
}

TraceRecorder::TraceRecorder(std::string path, UniqueFd fd, const UnionTree& tree)
    : path_(std::move(path)), tree_(tree), start_(std::chrono::steady_clock::now()), fd_(std::move(fd)) {
  writer_ = std::thread([this] { WriterLoop(); });
}

TraceRecorder::~TraceRecorder() {
  if (Status closed = Close(); !closed) LogWarn("trace {}: {}", path_, closed.error().ToString());
}

void TraceRecorder::OnRead(const ReadEvent& event) {
  if (closed_.load(std::memory_order_relaxed)) return;
  Pending p{std::chrono::duration_cast<std::chrono::nanoseconds>(event.started - start_).count(),
            event.ino,
            event.offset,
            event.length,
            event.node->layer,
            event.outcome.chunk_misses > 0};
  // Spread threads over shards so concurrent readers rarely meet on one mutex.
  size_t shard = std::hash<std::thread::id>{}(std::this_thread::get_id()) % kShards;
  std::lock_guard lock(shards_[shard].mu);
  shards_[shard].records.push_back(p);
}

void TraceRecorder::WriterLoop() {
  std::vector<Pending> batch;
  for (;;) {
    bool stopping;
    {
      std::unique_lock lock(wake_mu_);
      wake_cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return stop_; });
      stopping = stop_;
    }
    batch.clear();
    for (Shard& shard : shards_) {
      std::lock_guard lock(shard.mu);
      batch.insert(batch.end(), shard.records.begin(), shard.records.end());
      shard.records.clear();
    }
    if (!batch.empty() && write_status_) write_status_ = WriteBatch(batch);
    if (stopping) return;
  }
}

Status TraceRecorder::WriteBatch(std::vector<Pending>& batch) {
  std::stable_sort(batch.begin(), batch.end(), [](const Pending& a, const Pending& b) { return a.time_ns < b.time_ns; });
  ByteWriter w;
  for (const Pending& p : batch) {
    auto [it, fresh] = file_ids_.try_emplace(p.ino, static_cast<uint32_t>(file_ids_.size()));
    if (fresh) {
      std::string path = tree_.PathOf(p.ino);
      EncodeFile(w, it->second, path.starts_with('/') ? std::string_view(path).substr(1) : std::string_view(path));
    }
    TraceRecord r{p.time_ns / 1000, it->second, p.offset, p.length, p.miss, p.layer};
    EncodeAccess(w, r.time_us - last_time_us_, r);
    last_time_us_ = r.time_us;
  }
  LAZYFS_TRY(WriteAll(fd_.get(), w.data(), path_));
  records_written_.fetch_add(batch.size(), std::memory_order_relaxed);
  return Ok();
}

Status TraceRecorder::Close() {
  if (closed_.exchange(true)) return Ok();
  {
    std::lock_guard lock(wake_mu_);
    stop_ = true;
  }
  wake_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  Status status = write_status_;
  if (status && ::fsync(fd_.get()) != 0) status = PosixError(errno, "fsync " + path_);
  fd_.Reset();
  return status;
}

}  // namespace lazyfs::fs
