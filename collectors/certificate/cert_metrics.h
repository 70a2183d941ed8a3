#pragma once
// What the certificate collectors share: ssl_exporter's certificate labels and one function that
// publishes not_after/not_before for a list of certificates (each distinct certificate once).

#include <set>
#include <string>
#include <vector>

#include "runbook/metric_sink.h"
#include "runbook/tls_dialer.h"

namespace runbook::certificate {

// serial_no, issuer_cn, cn, dnsnames, ips, emails, ou — after `prefix` (e.g. {"file"}).
inline std::vector<std::string> CertLabels(std::vector<std::string> prefix) {
  for (const char* l : {"serial_no", "issuer_cn", "cn", "dnsnames", "ips", "emails", "ou"})
    prefix.push_back(l);
  return prefix;
}

inline MetricDesc CertDesc(std::string name, std::string help, std::vector<std::string> prefix = {}) {
  return {std::move(name), MetricKind::kGauge, std::move(help), CertLabels(std::move(prefix))};
}

// Adds not_after and not_before of every certificate, labelled prefix_values + its fields. A
// certificate that appears twice (a bundle listing it twice, a server sending it twice) is
// published once.
inline void AddCertificates(MetricSink& sink, const MetricDesc& not_after, const MetricDesc& not_before,
                            const std::vector<std::string>& prefix_values,
                            const std::vector<CertInfo>& certs) {
  std::set<std::vector<std::string>> seen;
  for (const auto& c : certs) {
    std::vector<std::string> values = prefix_values;
    values.insert(values.end(), {c.serial_no, c.issuer_cn, c.cn, c.dnsnames, c.ips, c.emails, c.ou});
    if (!seen.insert(values).second) continue;
    sink.Add(not_after, values, c.not_after);
    sink.Add(not_before, values, c.not_before);
  }
}

const MetricDesc kProbeSuccess{"ssl_probe_success",
                               MetricKind::kGauge,
                               "1 if the probe found certificates and (for endpoints) verified the chain "
                               "and the host name, else 0.",
                               {}};

}  // namespace runbook::certificate
