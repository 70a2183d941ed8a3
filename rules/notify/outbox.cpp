#include "notify/outbox.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace runbook::notify {

namespace {

// Record: 'A' or 'R', u32 payload length, u32 CRC-32 of the payload, payload (JSON).
void PutU32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint32_t GetU32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

void Record(std::string& out, char type, const std::string& payload) {
  out += type;
  PutU32(out, static_cast<std::uint32_t>(payload.size()));
  PutU32(out, static_cast<std::uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(payload.data()),
                                               static_cast<uInt>(payload.size()))));
  out += payload;
}

std::string AddPayload(const OutboxEntry& e) {
  nlohmann::json j{{"id", e.id},           {"sink", e.sink},     {"key", e.key},
                   {"created", e.created}, {"alerts", e.alerts}, {"body", e.body}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool WriteAll(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

void SyncDir(const std::string& dir) {
  int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) {
    ::fsync(d);
    ::close(d);
  }
}

}  // namespace

std::unique_ptr<Outbox> Outbox::Open(const std::string& dir, std::size_t capacity, bool fsync,
                                     std::string& error) {
  std::unique_ptr<Outbox> box(new Outbox());
  box->dir_ = dir;
  box->capacity_ = capacity;
  box->fsync_ = fsync;
  if (dir.empty()) return box;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    error = "outbox " + dir + ": cannot create the directory: " + ec.message();
    return nullptr;
  }
  box->lock_fd_ = ::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (box->lock_fd_ < 0 || ::flock(box->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    error = "outbox " + dir + ": " +
            (box->lock_fd_ < 0 ? std::string(std::strerror(errno)) : "in use by another process");
    return nullptr;
  }
  const std::string path = dir + "/outbox.log";
  std::ifstream in(path, std::ios::binary);
  std::string data;
  if (in) {
    std::ostringstream ss;
    ss << in.rdbuf();
    data = ss.str();
  }
  std::size_t off = 0;
  while (off + 9 <= data.size()) {
    char type = data[off];
    std::uint32_t len = GetU32(data.data() + off + 1), crc = GetU32(data.data() + off + 5);
    if ((type != 'A' && type != 'R') || off + 9 + len > data.size()) break;
    std::string payload = data.substr(off + 9, len);
    if (crc32(0, reinterpret_cast<const Bytef*>(payload.data()), len) != crc) break;
    off += 9 + len;
    auto j = nlohmann::json::parse(payload, nullptr, false);
    if (j.is_discarded()) continue;
    if (type == 'A') {
      OutboxEntry e;
      e.id = j.value("id", std::uint64_t{0});
      e.sink = j.value("sink", "");
      e.key = j.value("key", "");
      e.created = j.value("created", TimestampMs{0});
      e.alerts = j.value("alerts", 0);
      e.body = j.value("body", "");
      box->next_id_ = std::max(box->next_id_, e.id + 1);
      box->live_[e.id] = std::move(e);
    } else if (j.is_array()) {
      for (const auto& id : j)
        if (id.is_number_unsigned()) box->live_.erase(id.get<std::uint64_t>());
    }
  }
  if (off < data.size()) box->corrupt_ = 1;
  if (!box->Rewrite()) {
    error = "outbox " + dir + ": cannot write " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  return box;
}

Outbox::~Outbox() {
  if (fd_ >= 0) {
    if (dirty_ && fsync_) ::fdatasync(fd_);
    ::close(fd_);
  }
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

bool Outbox::Rewrite() {
  const std::string path = dir_ + "/outbox.log", tmp = path + ".tmp";
  std::string data;
  for (const auto& [id, e] : live_) Record(data, 'A', AddPayload(e));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  if (!WriteAll(fd, data) || (fsync_ && ::fsync(fd) != 0) || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::close(fd);
    return false;
  }
  if (fsync_) SyncDir(dir_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  file_bytes_ = live_bytes_ = data.size();
  dirty_ = false;
  return true;
}

bool Outbox::Append(const std::string& records, bool sync) {
  if (fd_ < 0) return dir_.empty();
  if (!WriteAll(fd_, records)) return false;
  file_bytes_ += records.size();
  dirty_ = true;
  if (sync && fsync_) {
    if (::fdatasync(fd_) != 0) return false;
    dirty_ = false;
  }
  return true;
}

std::vector<OutboxEntry> Outbox::Put(std::vector<OutboxEntry>& entries, bool* ok) {
  std::string records;
  for (auto& e : entries) {
    e.id = next_id_++;
    if (fd_ >= 0) {
      auto payload = AddPayload(e);
      live_bytes_ += payload.size() + 9;
      Record(records, 'A', payload);
    }
    live_[e.id] = e;
  }
  std::vector<OutboxEntry> dropped;
  std::vector<std::uint64_t> dropped_ids;
  while (live_.size() > capacity_) {
    dropped_ids.push_back(live_.begin()->first);
    dropped.push_back(std::move(live_.begin()->second));
    live_.erase(live_.begin());
  }
  if (!dropped_ids.empty() && fd_ >= 0) Record(records, 'R', nlohmann::json(dropped_ids).dump());
  bool written = Append(records, true);
  if (ok) *ok = written;
  if (fd_ >= 0 && file_bytes_ > (1u << 22) && file_bytes_ > 4 * live_bytes_) Rewrite();
  return dropped;
}

void Outbox::Remove(const std::vector<std::uint64_t>& ids) {
  std::vector<std::uint64_t> removed;
  for (auto id : ids) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    std::size_t bytes = it->second.body.size() + it->second.sink.size() + 100;
    live_bytes_ = live_bytes_ > bytes ? live_bytes_ - bytes : 0;
    live_.erase(it);
    removed.push_back(id);
  }
  if (removed.empty() || fd_ < 0) return;
  std::string records;
  Record(records, 'R', nlohmann::json(removed).dump());
  Append(records, false);
  if (file_bytes_ > (1u << 22) && file_bytes_ > 4 * live_bytes_) Rewrite();
}

void Outbox::Sync() {
  if (fd_ >= 0 && dirty_ && fsync_) {
    ::fdatasync(fd_);
    dirty_ = false;
  }
}

const OutboxEntry* Outbox::Find(std::uint64_t id) const {
  auto it = live_.find(id);
  return it == live_.end() ? nullptr : &it->second;
}

}  // namespace runbook::notify
