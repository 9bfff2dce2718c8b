import Hearth
import SwiftUI
import UIKit

@main
struct HearthChatApp: App {
    @State private var app = AppModel()
    @Environment(\.scenePhase) private var scenePhase

    var body: some Scene {
        WindowGroup {
            RootView()
                .environment(app)
                // iOS revokes GPU work in the background: stop the turn cleanly (rolled back,
                // resumable), pause downloads and save the session cache before that happens.
                .onChange(of: scenePhase) { _, phase in
                    switch phase {
                    case .background: app.onBackground()
                    case .active: app.onForeground()
                    default: break
                    }
                }
                .onReceive(NotificationCenter.default.publisher(for: UIApplication.didReceiveMemoryWarningNotification)) { _ in
                    app.onMemoryWarning()
                }
                .onReceive(NotificationCenter.default.publisher(for: ProcessInfo.thermalStateDidChangeNotification)) { _ in
                    app.onThermal(ProcessInfo.processInfo.thermalState)
                }
        }
    }
}

struct RootView: View {
    @Environment(AppModel.self) private var app
    @State private var tab = 0

    var body: some View {
        @Bindable var app = app
        TabView(selection: $tab) {
            ChatView(onPickModel: { tab = 2 })
                .tabItem { Label("Chat", systemImage: "bubble.left.and.bubble.right") }.tag(0)
            ConversationsView(onOpen: { tab = 0 })
                .tabItem { Label("Chats", systemImage: "list.bullet") }.tag(1)
            ModelsView(onLoaded: { tab = 0 })
                .tabItem { Label("Models", systemImage: "arrow.down.circle") }.tag(2)
            SettingsView()
                .tabItem { Label("Settings", systemImage: "gear") }.tag(3)
        }
        .onAppear { if app.modelName == nil { tab = 2 } }
        .alert("HearthChat", isPresented: Binding(get: { app.notice != nil }, set: { if !$0 { app.notice = nil } })) {
            Button("OK") { app.notice = nil }
        } message: {
            Text(app.notice ?? "")
        }
    }
}
