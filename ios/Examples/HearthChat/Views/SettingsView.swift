import Hearth
import SwiftUI

struct SettingsView: View {
    @Environment(AppModel.self) private var app

    var body: some View {
        let s = app.settings.settings
        let m = app.settings
        NavigationStack {
            Form {
                Section("Instructions") {
                    TextEditor(text: Binding(get: { s.instructions }, set: { v in m.update { $0.instructions = v } }))
                        .frame(minHeight: 80)
                    Text("Applies to new chats.").font(.caption)
                }
                Section("Sampling") {
                    LabeledContent("Temperature", value: String(format: "%.2f", s.temperature))
                    Slider(value: Binding(get: { Double(s.temperature) }, set: { v in m.update { $0.temperature = Float(v) } }), in: 0...2)
                    LabeledContent("Top-p", value: String(format: "%.2f", s.topP))
                    Slider(value: Binding(get: { Double(s.topP) }, set: { v in m.update { $0.topP = Float(v) } }), in: 0.05...1)
                    Picker("Thinking budget", selection: Binding(get: { s.thinkingBudget ?? -1 }, set: { v in m.update { $0.thinkingBudget = v < 0 ? nil : v } })) {
                        Text("Model default").tag(Int32(-1))
                        ForEach([Int32(256), 1024, 4096], id: \.self) { Text("\($0) tokens").tag($0) }
                    }
                }
                Section("Model") {
                    Picker("Context length", selection: Binding(get: { s.contextLength }, set: { v in m.update { $0.contextLength = v } })) {
                        ForEach(ChatSettings.contextLengths, id: \.self) { Text("\($0 / 1024)k tokens").tag($0) }
                    }
                    Picker("Backend", selection: Binding(get: { s.backendName }, set: { v in
                        m.update { $0.backend = v == "GPU" ? .gpu : v == "CPU" ? .cpu : .auto }
                    })) {
                        Text("Auto").tag("AUTO")
                        Text("GPU").tag("GPU")
                        Text("CPU").tag("CPU")
                    }
                    Text(backendReport(choice: s.backend, info: app.modelInfo)).font(.caption)
                    if app.settingsNeedReload {
                        Text("Reload the model (Models tab) for backend and context changes to apply.").font(.caption).foregroundStyle(.orange)
                    }
                }
                Section {
                    Toggle("Demo tools (date & time, calculator)", isOn: Binding(get: { s.toolsEnabled }, set: { v in m.update { $0.toolsEnabled = v } }))
                } footer: {
                    Text("Hearth runs entirely on this device: no account, no analytics, no network except the downloads you start.")
                }
            }
            .navigationTitle("Settings")
        }
    }
}
