import SwiftUI

struct ConversationsView: View {
    @Environment(AppModel.self) private var app
    let onOpen: () -> Void
    @State private var renaming: ConversationSummary?
    @State private var newTitle = ""

    var body: some View {
        NavigationStack {
            List {
                ForEach(app.conversations.conversations) { c in
                    Button {
                        app.openConversation(c.id)
                        onOpen()
                    } label: {
                        VStack(alignment: .leading) {
                            Text(c.title).font(.headline)
                            Text("\(c.messageCount) messages · \(Date(timeIntervalSince1970: Double(c.updatedAtMs) / 1000).formatted())").font(.caption)
                        }
                    }
                    .swipeActions {
                        Button("Delete", role: .destructive) { app.deleteConversation(c.id) }
                        Button("Rename") {
                            newTitle = c.title
                            renaming = c
                        }
                    }
                }
            }
            .navigationTitle("Chats")
            .toolbar {
                Button {
                    app.openConversation(nil)
                    onOpen()
                } label: { Image(systemName: "square.and.pencil") }
                    .accessibilityLabel("New chat")
            }
            .alert("Rename", isPresented: Binding(get: { renaming != nil }, set: { if !$0 { renaming = nil } })) {
                TextField("Title", text: $newTitle)
                Button("Save") {
                    if let c = renaming { app.conversations.rename(c.id, to: newTitle) }
                    renaming = nil
                }
                Button("Cancel", role: .cancel) { renaming = nil }
            }
        }
    }
}
