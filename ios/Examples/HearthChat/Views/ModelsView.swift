import Hearth
import SwiftUI
import UniformTypeIdentifiers

struct ModelsView: View {
    @Environment(AppModel.self) private var app
    let onLoaded: () -> Void
    @State private var importing = false
    @State private var importMessage: String?

    var body: some View {
        NavigationStack {
            List {
                if let f = app.loading {
                    Section { ProgressView("Loading the model…", value: Double(f), total: 1) }
                }
                if let downloads = app.downloads {
                    Section("On this iPhone") {
                        ForEach(downloads.installed, id: \.name) { m in
                            HStack {
                                VStack(alignment: .leading) {
                                    Text(m.name)
                                    Text("\(bytes(m.sizeBytes)) · \(m.verified ? "verified" : "not verified (imported)")").font(.caption)
                                }
                                Spacer()
                                if m.name == app.modelName {
                                    Text("Loaded").foregroundStyle(.secondary)
                                } else {
                                    Button("Load") {
                                        Task {
                                            await app.loadModel(path: m.path)
                                            onLoaded()
                                        }
                                    }
                                }
                            }
                        }
                        Button("Import a GGUF file…") { importing = true }
                        if let importMessage { Text(importMessage).font(.caption) }
                    }
                    Section("Catalogue") {
                        ForEach(downloads.rows) { row in CatalogueRow(row: row, downloads: downloads) }
                    }
                }
            }
            .navigationTitle("Models")
            .fileImporter(isPresented: $importing, allowedContentTypes: [.data]) { result in
                guard case .success(let url) = result, let downloads = app.downloads else { return }
                Task {
                    // A security-scoped file from Files: validated by the SDK before it is copied in.
                    let scoped = url.startAccessingSecurityScopedResource()
                    defer { if scoped { url.stopAccessingSecurityScopedResource() } }
                    switch await downloads.importModel(from: url) {
                    case .accepted(_, let info): importMessage = "Imported \(info.architecture) model (\(info.quant))."
                    case .rejected(let reason): importMessage = reason
                    }
                }
            }
        }
    }
}

private struct CatalogueRow: View {
    let row: ModelRow
    let downloads: DownloadMachine

    var body: some View {
        let e = row.entry
        VStack(alignment: .leading, spacing: 4) {
            Text("\(row.featured ? "★ " : "")\(e.name) · \(e.quant)").font(.headline)
            Text(e.description).font(.caption)
            Text("Download \(bytes(e.sizeBytes)) · needs \(bytes(e.ramBytes)) RAM · \(row.fit.rawValue)")
                .font(.caption)
                .foregroundStyle(row.fit == .fits ? .green : row.fit == .tight ? .orange : .red)
            switch row.state {
            case .notDownloaded:
                Button("Download") { downloads.start(row.file) }.disabled(row.fit == .doesNotFit)
            case .downloading(let done, let total, let rate):
                ProgressView(value: total.map { Double(done) / Double(max($0, 1)) } ?? 0)
                Text("\(bytes(UInt64(done))) of \(total.map { bytes(UInt64($0)) } ?? "?") · \(bytes(UInt64(rate)))/s").font(.caption)
                HStack {
                    Button("Pause") { downloads.pause(row.file) }
                    Button("Cancel", role: .destructive) { downloads.cancel(row.file) }
                }
                .buttonStyle(.borderless)
            case .verifying(let checked):
                Text("Checking the downloaded part (\(bytes(UInt64(checked))))…").font(.caption)
            case .paused(let done, _):
                HStack {
                    Text("Paused at \(bytes(UInt64(done)))")
                    Spacer()
                    Button("Resume") { downloads.resume(row.file) }
                    Button("Cancel", role: .destructive) { downloads.cancel(row.file) }
                }
                .buttonStyle(.borderless)
            case .installed(_, let verified):
                HStack {
                    Text(verified ? "Installed · SHA-256 verified" : "Installed")
                    Spacer()
                    Button("Delete", role: .destructive) { downloads.delete(row.file) }
                }
                .buttonStyle(.borderless)
            case .failed(let message):
                HStack {
                    Text(message).foregroundStyle(.red).font(.caption)
                    Spacer()
                    Button("Retry") { downloads.resume(row.file) }
                }
                .buttonStyle(.borderless)
            }
        }
    }
}

private func bytes(_ n: UInt64) -> String {
    ByteCountFormatter.string(fromByteCount: Int64(clamping: n), countStyle: .file)
}
