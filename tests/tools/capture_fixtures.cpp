// Captures fixtures verbatim from a live server: runs every registered collector of a kind once
// through a RecordingPgSession, writing <out>/<query>.tsv and <out>/server_version_num.
//   capture_fixtures --kind postgres --host 127.0.0.1 --port 5432 --user exporter
//                    --password-file F --database postgres --out tests/fixtures/postgres/15/primary
#include <cstdio>
#include <cstring>
#include <string>

#include "libpq_session.h"
#include "pg_fixture.h"
#include "runbook/collector.h"

int main(int argc, char** argv) {
  runbook::PgConnParams p;
  p.sslmode = "disable";
  std::string out, kind = "postgres";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--kind")
      kind = v;
    else if (k == "--host")
      p.host = v;
    else if (k == "--port")
      p.port = std::stoi(v);
    else if (k == "--user")
      p.user = v;
    else if (k == "--password-file")
      p.password_file = v;
    else if (k == "--database")
      p.database = v;
    else if (k == "--out")
      out = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "--out is required\n");
    return 2;
  }
  runbook::TargetKind target_kind =
      kind == "pgbouncer" ? runbook::TargetKind::kPgBouncer : runbook::TargetKind::kPostgres;
  p.send_session_options = target_kind == runbook::TargetKind::kPostgres;
  p.prepare_statements = p.send_session_options;
  runbook::LibpqSession session(p);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  if (auto st = session.Connect(deadline); !st.ok()) {
    std::fprintf(stderr, "connect: %s\n", st.message.c_str());
    return 1;
  }
  runbook::testing::RecordingPgSession recorder(session, out);
  int failures = 0;
  for (const auto& info : runbook::RegisteredCollectors()) {
    if (info.kind != target_kind) continue;
    auto collector = info.factory();
    runbook::MetricSink sink;
    runbook::ScrapeContext ctx{info.name, deadline, &recorder};
    auto st = collector->Update(ctx, sink);
    std::fprintf(stderr, "%-24s %s %s\n", info.name.c_str(), st.ok() ? "ok" : "FAILED", st.message.c_str());
    failures += !st.ok();
  }
  return failures ? 1 : 0;
}
