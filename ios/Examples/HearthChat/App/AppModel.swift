import Foundation
import Hearth
import Observation
import UIKit

/// Glue between iOS and the app logic (the sibling of Android's ChatAppState): owns the loaded
/// model, the open conversation's SDK session and its `ChatController`. Views read its state.
@MainActor
@Observable
final class AppModel {
    let settings: SettingsModel
    let tools = DemoTools()
    let store: ModelStore?
    let conversations: ConversationStore
    let downloads: DownloadMachine?

    private var model: HearthModel?
    private var loadedWith: ChatSettings?
    private var session: ChatSession?
    /// The SDK remembers a GPU that failed its self-test here (`ModelOptions.cacheDir`).
    private let cachesPath = FileManager.default.urls(for: .cachesDirectory, in: .userDomainMask)[0].path
    /// When the last memory warning came (see `onMemoryWarning`).
    private var lastMemoryWarning: Date?
    private var conversation: Conversation?
    private var pausedDownloads: [String] = []

    private(set) var modelInfo: ModelInfo?
    private(set) var modelName: String?
    private(set) var loading: Float?
    private(set) var controller: ChatController?
    /// App-level notices and errors in plain language (model unloaded, load failed, …).
    var notice: String?
    private var thermal: ThermalLevel = .nominal

    init() {
        let support = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        let modelsDir = support.appendingPathComponent("models", isDirectory: true)
        try? FileManager.default.createDirectory(at: modelsDir, withIntermediateDirectories: true)
        settings = SettingsModel(file: support.appendingPathComponent("settings.json"))
        conversations = ConversationStore(directory: support.appendingPathComponent("conversations", isDirectory: true))
        do {
            let s = try ModelStore(directory: modelsDir.path)
            store = s
            let d = DownloadMachine(store: s, modelsDir: modelsDir, deviceMemoryBytes: Int64(ProcessInfo.processInfo.physicalMemory))
            downloads = d
            d.refresh()
        } catch {
            store = nil
            downloads = nil
            notice = "The models folder could not be opened. Free some storage and restart the app."
        }
        onThermal(ProcessInfo.processInfo.thermalState)
    }

    /// Loads the installed model at `path` with the backend and context from Settings.
    func loadModel(path: String) async {
        closeModel()
        let s = settings.settings
        loading = 0
        defer { loading = nil }
        do {
            let m = try await HearthModel.load(from: URL(fileURLWithPath: path), options: s.modelOptions(cacheDir: cachesPath)) { p in
                Task { @MainActor [weak self] in self?.loading = p.fraction }
            }
            model = m
            loadedWith = s
            modelInfo = try? m.info
            modelName = URL(fileURLWithPath: path).lastPathComponent
            openConversation(conversation?.id)
        } catch let e as HearthError {
            notice = describe(e)
        } catch {
            notice = "The model could not be loaded."
        }
    }

    /// Opens a stored conversation (or a new one for nil) on the loaded model.
    func openConversation(_ id: String?) {
        guard let m = model else {
            notice = "Download or import a model first (Models tab)."
            return
        }
        saveAndCloseSession()
        let c = id.flatMap { conversations.load($0) } ?? conversations.create(settings: settings.settings)
        conversation = c
        do {
            let s = try conversations.openSession(model: m, conversation: c, options: settings.settings.sessionOptions(tools: tools.specs))
            session = s
            let ctl = ChatController(
                turns: SessionTurns(session: s),
                settings: { [settings] in settings.settings },
                initial: c.messages,
                backend: modelInfo?.backend,
                tools: tools,
                onTurnFinished: { [weak self] messages in
                    guard let self, let conv = self.conversation else { return }
                    self.conversation = self.conversations.update(conv, messages: messages, modelName: self.modelName)
                }
            )
            ctl.setThermal(thermal)
            controller = ctl
        } catch let e as HearthError {
            notice = describe(e)
        } catch {
            notice = "The conversation could not be opened."
        }
    }

    func deleteConversation(_ id: String) {
        if conversation?.id == id {
            controller?.stop()
            controller = nil
            session = nil
            conversation = nil
        }
        conversations.delete(id)
    }

    /// Going to the background: iOS revokes GPU work there, so the turn stops now (rolled back
    /// by the SDK, resumable) rather than failing mid-token; downloads pause; the cache is saved.
    func onBackground() {
        let bg = UIApplication.shared.beginBackgroundTask(withName: "hearth.save")
        controller?.interrupt("Stopped when the app went to the background. Tap Resume to continue.")
        pausedDownloads = downloads?.pauseAll() ?? []
        guard let c = conversation, let s = session else {
            UIApplication.shared.endBackgroundTask(bg)
            return
        }
        Task {
            await self.controller?.awaitIdle()
            try? await self.conversations.saveCache(c.id, session: s)
            UIApplication.shared.endBackgroundTask(bg)
        }
    }

    /// Back in the foreground: resume the downloads the background paused.
    func onForeground() {
        pausedDownloads.forEach { downloads?.resume($0) }
        pausedDownloads = []
    }

    /// A memory warning. iOS sends one kind only, so the answer escalates: the first warning
    /// while idle frees the session's caches (the chat stays; the next message prefills it
    /// again). A second within a minute, or one during a reply, stops, saves and unloads the
    /// model with a visible notice.
    func onMemoryWarning() {
        guard model != nil else { return }
        let now = Date()
        let recent = lastMemoryWarning.map { now.timeIntervalSince($0) < 60 } ?? false
        lastMemoryWarning = now
        if !recent, controller?.state.generating != true, let s = session {
            Task.detached { s.releaseMemory() }
            return
        }
        controller?.interrupt("Stopped: the system is short of memory.")
        closeModel()
        notice = "The model was unloaded because iOS needed memory. Load it again from the Models tab."
    }

    func onThermal(_ state: ProcessInfo.ThermalState) {
        switch state {
        case .critical: thermal = .critical
        case .serious: thermal = .serious
        case .fair: thermal = .fair
        default: thermal = .nominal
        }
        controller?.setThermal(thermal)
    }

    var settingsNeedReload: Bool { loadedWith.map { settings.needsReload(loadedWith: $0) } ?? false }

    private func saveAndCloseSession() {
        guard let s = session, let c = conversation else { return }
        session = nil
        Task { try? await conversations.saveCache(c.id, session: s) }
    }

    private func closeModel() {
        controller?.stop()
        controller = nil
        saveAndCloseSession()
        // The weights are freed once the last reference (and its sessions) are gone.
        model = nil
        modelInfo = nil
        modelName = nil
    }
}
