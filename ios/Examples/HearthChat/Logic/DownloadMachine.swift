import Foundation
import Hearth
import Observation

// Mirrors android/app/src/main/kotlin/dev/hearth/chat/logic/DownloadMachine.kt.
//
// iOS downloads use the SDK's resumable download (ModelStore.download) while the app is in the
// foreground, not a background URLSession: the SDK owns the resume bookkeeping, the SHA-256
// verification and the models folder, and a background URLSession would hand the app a finished
// file outside all three. When the app goes to the background the download is paused (the SDK
// keeps the partial file; a UIApplication background task gives it time to stop cleanly) and it
// resumes when the app returns, re-hashing the partial file first.

/// Whether a model's memory need fits this device.
enum Fit: String, Sendable {
    case fits = "Fits"
    case tight = "Tight"
    case doesNotFit = "Does not fit"
}

/// The fit of a model needing `ramBytes` (the SDK's estimate) on a device with
/// `deviceMemoryBytes` of RAM; `fitsNow` is the SDK's check against the memory available now.
/// An app gets a share of RAM, not all of it: iOS ends apps well before they reach 60 % of it.
func fitOf(ramBytes: Int64, deviceMemoryBytes: Int64, fitsNow: Bool?) -> Fit {
    if ramBytes > deviceMemoryBytes * 6 / 10 { return .doesNotFit }
    if fitsNow == false || ramBytes > deviceMemoryBytes * 4 / 10 { return .tight }
    return .fits
}

enum DownloadState: Equatable, Sendable {
    case notDownloaded
    case downloading(downloadedBytes: Int64, totalBytes: Int64?, bytesPerSecond: Double)
    /// An existing partial file is being re-hashed before the download resumes.
    case verifying(checkedBytes: Int64)
    /// Stopped with the partial file kept; resuming continues from `downloadedBytes`.
    case paused(downloadedBytes: Int64, totalBytes: Int64?)
    case installed(path: String, verified: Bool)
    case failed(message: String)

    var isRunning: Bool {
        switch self {
        case .downloading, .verifying: return true
        default: return false
        }
    }
}

/// A catalogue row of the Models screen.
struct ModelRow: Identifiable, Equatable, Sendable {
    let entry: CatalogueEntry
    let fit: Fit
    let featured: Bool
    var state: DownloadState
    var file: String { entry.modelRef.file }
    var id: String { file }
}

/// The outcome of importing a GGUF picked by the user.
enum ImportResult: Equatable, Sendable {
    case accepted(path: String, info: ModelInfo)
    case rejected(reason: String)
}

/// The Models screen's logic: the catalogue with each entry's fit, and per file a download state
/// machine notDownloaded → downloading ⇄ paused → (verifying) → installed, or failed / cancelled.
@MainActor
@Observable
final class DownloadMachine {
    private(set) var rows: [ModelRow] = []
    private(set) var installed: [InstalledModel] = []
    private let store: ModelStore
    private let modelsDir: URL
    private let deviceMemoryBytes: Int64
    private let catalogue: () throws -> [CatalogueEntry]
    private var tasks: [String: Task<Void, Never>] = [:]

    private enum Intent { case pause, cancel }
    private var intents: [String: Intent] = [:]

    /// Catalogue ids shown first (LFM2.5-1.2B-Instruct, LFM2.5-8B-A1B).
    static let featured: Set<String> = ["lfm2.5-1.2b-instruct", "lfm2.5-8b-a1b"]

    init(store: ModelStore, modelsDir: URL, deviceMemoryBytes: Int64, catalogue: (() throws -> [CatalogueEntry])? = nil) {
        self.store = store
        self.modelsDir = modelsDir
        self.deviceMemoryBytes = deviceMemoryBytes
        self.catalogue = catalogue ?? { try store.catalogue() }
    }

    /// Reloads the catalogue and what is installed; keeps the state of running downloads.
    func refresh() {
        installed = (try? store.installed()) ?? []
        let running = Dictionary(rows.map { ($0.file, $0.state) }, uniquingKeysWith: { a, _ in a })
        let entries = (try? catalogue()) ?? []
        rows = entries.map { e in
            let file = e.modelRef.file
            var state = DownloadState.notDownloaded
            if let m = installed.first(where: { $0.name == file }) {
                state = .installed(path: m.path, verified: m.verified)
            } else if let r = running[file], !isInstalled(r) {
                state = r
            }
            return ModelRow(
                entry: e,
                fit: fitOf(ramBytes: Int64(e.ramBytes), deviceMemoryBytes: deviceMemoryBytes, fitsNow: e.fits),
                featured: DownloadMachine.featured.contains(e.id),
                state: state
            )
        }.sorted { a, b in a.featured != b.featured ? a.featured : a.entry.sizeBytes < b.entry.sizeBytes }
    }

    func state(_ file: String) -> DownloadState { rows.first { $0.file == file }?.state ?? .notDownloaded }

    func start(_ file: String) {
        let s = state(file)
        if s.isRunning || isInstalled(s) { return }
        intents[file] = nil
        var from: Int64 = 0
        if case .paused(let d, _) = s { from = d }
        set(file, .downloading(downloadedBytes: from, totalBytes: nil, bytesPerSecond: 0))
        tasks[file] = Task { await self.runDownload(file) }
    }

    func pause(_ file: String) {
        guard state(file).isRunning else { return }
        intents[file] = .pause
        tasks.removeValue(forKey: file)?.cancel()
    }

    func resume(_ file: String) { start(file) }

    /// Pauses every running download (the app goes to the background); returns their files.
    func pauseAll() -> [String] {
        let running = rows.filter { $0.state.isRunning }.map(\.file)
        running.forEach(pause)
        return running
    }

    /// Stops the download and deletes its partial file.
    func cancel(_ file: String) {
        let s = state(file)
        if isInstalled(s) { return }
        intents[file] = .cancel
        if let t = tasks.removeValue(forKey: file) {
            t.cancel()
        } else {
            try? store.delete(name: file)
            set(file, .notDownloaded)
        }
    }

    func delete(_ file: String) {
        try? store.delete(name: file)
        set(file, .notDownloaded)
        refresh()
    }

    /// Downloads `file` (a catalogue entry) until it is verified, stopped or failed.
    func runDownload(_ file: String) async {
        guard let entry = rows.first(where: { $0.file == file })?.entry else { return }
        var last: (Int64, Int64?) = (0, nil)
        do {
            for try await p in store.download(entry.modelRef) {
                if p.rehashing {
                    set(file, .verifying(checkedBytes: Int64(p.downloadedBytes)))
                } else {
                    last = (Int64(p.downloadedBytes), p.totalBytes.map { Int64($0) })
                    set(file, .downloading(downloadedBytes: last.0, totalBytes: last.1, bytesPerSecond: p.bytesPerSecond))
                }
            }
            // A cancelled Task ends the stream early: treat it as a stop, below.
            if Task.isCancelled { throw CancellationError() }
            installed = (try? store.installed()) ?? []
            if let m = installed.first(where: { $0.name == file }) {
                set(file, .installed(path: m.path, verified: m.verified))
            } else {
                set(file, .failed(message: "the file is missing after its download"))
            }
        } catch let e as HearthError {
            set(file, .failed(message: describe(e)))
        } catch {
            switch intents.removeValue(forKey: file) {
            case .cancel?:
                try? store.delete(name: file)
                set(file, .notDownloaded)
            default:
                // Paused, or stopped by the system: the partial file is kept.
                set(file, .paused(downloadedBytes: last.0, totalBytes: last.1))
            }
        }
        tasks[file] = nil
    }

    /// Validates the GGUF at `source` with the SDK and, if Hearth runs it, copies it into the
    /// models folder. A rejected file is not copied.
    func importModel(from source: URL, name: String? = nil) async -> ImportResult {
        let name = name ?? source.lastPathComponent
        guard name.lowercased().hasSuffix(".gguf") else { return .rejected(reason: "Only .gguf model files can be imported.") }
        let info: ModelInfo
        do {
            info = try await HearthSDK.modelInfo(path: source.path)
        } catch let e as HearthError {
            return .rejected(reason: describe(e))
        } catch {
            return .rejected(reason: "The file could not be read.")
        }
        let target = modelsDir.appendingPathComponent((name as NSString).lastPathComponent)
        if source.standardizedFileURL != target.standardizedFileURL {
            do {
                try? FileManager.default.removeItem(at: target)
                try FileManager.default.copyItem(at: source, to: target)
            } catch {
                return .rejected(reason: "The file could not be stored (check free space).")
            }
        }
        refresh()
        return .accepted(path: target.path, info: info)
    }

    private func isInstalled(_ s: DownloadState) -> Bool {
        if case .installed = s { return true }
        return false
    }

    private func set(_ file: String, _ state: DownloadState) {
        guard let i = rows.firstIndex(where: { $0.file == file }) else { return }
        rows[i].state = state
    }
}
