import Foundation
import KeelTestSupport
import Testing

@Suite("Chaos: three PostgreSQL workers killed, paused and cut off, the server restarted", .serialized)
struct ChaosTests {
    @Test("worker chaos, short: every run reaches its end, each effect key once, every history replays",
          .timeLimit(.minutes(5)))
    func shortChaos() async throws {
        try await PrivatePostgresServer.with { server in
            let restart = "KEEL_PG_PORT=\(server.port) KEEL_PG_DIR=\(server.directory) bash \(PostgresDevScript.path) restart"
            let output = try await WorkerBinary.run([
                "chaos", "--database", server.url, "--duration", "20", "--runs", "40", "--kill-every", "2",
                "--restart-command", restart,
            ])
            #expect(output.status == 0, "\(output.stdout)\n\(output.stderr)")
            let summary = try #require(output.stdout.split(separator: "\n").last { $0.hasPrefix("chaos:") })
            #expect(summary.contains("lost 0, duplicated 0, stuck 0, replay failures 0 — OK"), "\(summary)")
            #expect(summary.contains("server restarts 1") && summary.contains("connection cuts 1"), "\(summary)")
            #expect(summary.contains("stops 1") && !summary.contains("kills 0"), "\(summary)")
        }
    }
}
