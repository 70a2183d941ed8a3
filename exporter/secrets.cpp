#include "secrets.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

namespace runbook {

Status ReadPassword(const std::string& file, const std::string& env, std::string& out) {
  out.clear();
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return Status::Error(ErrorReason::kAuth,
                           "cannot read password_file " + file + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    // One trailing newline is an editor artefact, not part of the password.
    if (!out.empty() && out.back() == '\n') out.pop_back();
    if (!out.empty() && out.back() == '\r') out.pop_back();
  } else if (!env.empty()) {
    const char* v = std::getenv(env.c_str());
    if (!v) return Status::Error(ErrorReason::kAuth, "environment variable " + env + " is not set");
    out = v;
  }
  return Status::Ok();
}

}  // namespace runbook
