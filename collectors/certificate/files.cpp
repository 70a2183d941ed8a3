// PEM files and glob patterns (glob(3): *, ?, [...]; no **): every certificate of every file,
// bundles included. A pattern that matches nothing, or a file that cannot be read or holds no
// certificate, sets ssl_probe_success to 0 and is reported as a data error; the certificates of
// the other files are still published.
#include <glob.h>

#include <fstream>
#include <set>
#include <sstream>

#include "cert_metrics.h"
#include "runbook/collector.h"

namespace runbook::certificate {
namespace {

const MetricDesc kNotAfter =
    CertDesc("ssl_file_cert_not_after", "NotAfter of a certificate found in a file, as Unix time.", {"file"});
const MetricDesc kNotBefore = CertDesc("ssl_file_cert_not_before",
                                       "NotBefore of a certificate found in a file, as Unix time.", {"file"});

constexpr std::streamsize kMaxFileBytes = 16 << 20;

std::vector<std::string> Expand(const std::string& pattern) {
  glob_t g{};
  std::vector<std::string> out;
  if (glob(pattern.c_str(), GLOB_ERR, nullptr, &g) == 0)
    for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return out;
}

// Reads at most kMaxFileBytes; returns an error message or empty.
std::string ReadFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot read";
  out.resize(static_cast<std::size_t>(kMaxFileBytes) + 1);
  in.read(out.data(), kMaxFileBytes + 1);
  if (in.bad()) return "cannot read";
  out.resize(static_cast<std::size_t>(in.gcount()));
  if (static_cast<std::streamsize>(out.size()) > kMaxFileBytes) return "larger than 16 MiB";
  return {};
}

class FilesCollector final : public Collector {
 public:
  Status Update(ScrapeContext& ctx, MetricSink& sink) override {
    bool ok = true;
    std::size_t found = 0;
    std::set<std::string> done;
    for (const auto& pattern : ctx.settings->cert_files) {
      auto paths = Expand(pattern);
      if (paths.empty()) {
        sink.RecordError("certificate files: \"" + pattern + "\" matches no file");
        ok = false;
      }
      for (const auto& path : paths) {
        if (!done.insert(path).second) continue;
        if (ctx.Expired())
          return Status::Error(ErrorReason::kTimeout, "deadline reached while reading certificate files");
        std::string text;
        std::vector<CertInfo> certs;
        std::string err = ReadFile(path, text);
        if (err.empty()) err = ParsePemCertificates(text, certs);
        if (err.empty() && certs.empty()) err = "no PEM certificate in it";
        if (!err.empty()) {
          sink.RecordError("certificate file " + path + ": " + err);
          ok = false;
        }
        AddCertificates(sink, kNotAfter, kNotBefore, {path}, certs);
        found += certs.size();
      }
    }
    sink.Add(kProbeSuccess, {}, ok && found > 0 ? 1 : 0);
    return Status::Ok();
  }
};

const CollectorRegistration kRegistration{{
    .name = "files",
    .kind = TargetKind::kCertificates,
    .enabled_by_default = true,
    .tier = Tier::kFast,
    .help = "Certificates in PEM files and glob patterns (bundles included).",
    .factory = [] { return std::make_unique<FilesCollector>(); },
}};

}  // namespace
}  // namespace runbook::certificate
