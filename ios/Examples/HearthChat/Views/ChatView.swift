import Hearth
import SwiftUI
import UIKit

struct ChatView: View {
    @Environment(AppModel.self) private var app
    let onPickModel: () -> Void

    var body: some View {
        if let ctl = app.controller {
            ConversationView(ctl: ctl)
        } else {
            VStack(spacing: 12) {
                Text("No model loaded.").font(.headline)
                Text("Everything runs on this iPhone; nothing you type leaves it.").multilineTextAlignment(.center)
                Button("Choose a model", action: onPickModel).buttonStyle(.borderedProminent)
            }
            .padding()
        }
    }
}

private struct ConversationView: View {
    @Bindable var ctl: ChatController
    @State private var editing = false

    var body: some View {
        let state = ctl.state
        VStack(spacing: 0) {
            if state.thermal >= .serious {
                Banner(text: state.thermal == .critical ? "The iPhone is too hot: generation is paused." : "The iPhone is hot: generation is slowed down.")
            }
            if let n = state.notice { Banner(text: n) }
            if let e = state.error { Banner(text: e, dismiss: ctl.dismissError) }
            ScrollViewReader { proxy in
                ScrollView {
                    LazyVStack(alignment: .leading, spacing: 8) {
                        ForEach(state.messages) { m in
                            MessageView(
                                message: m,
                                canRegenerate: state.canRegenerate && m.id == state.messages.last?.id,
                                canEdit: state.canEdit && m.id == state.messages.last(where: { $0.author == .user })?.id,
                                onRegenerate: { ctl.regenerate() },
                                onEdit: {
                                    ctl.setDraft(m.text)
                                    editing = true
                                }
                            )
                            .id(m.id)
                        }
                    }
                    .padding()
                }
                .onChange(of: state.messages.last?.text) { _, _ in
                    if let id = state.messages.last?.id { proxy.scrollTo(id, anchor: .bottom) }
                }
            }
            if state.canResume {
                Button("Resume") { ctl.resume() }.padding(.horizontal)
            }
            HStack {
                TextField(editing ? "Edit your last message" : "Message", text: Binding(get: { ctl.state.draft }, set: { ctl.setDraft($0) }), axis: .vertical)
                    .textFieldStyle(.roundedBorder)
                    .lineLimit(1...6)
                if state.generating {
                    Button { ctl.stop() } label: { Image(systemName: "stop.circle.fill").font(.title2) }
                        .accessibilityLabel("Stop")
                } else {
                    Button {
                        if editing { ctl.editLast(state.draft) } else { ctl.send() }
                        editing = false
                    } label: { Image(systemName: "arrow.up.circle.fill").font(.title2) }
                        .disabled(state.draft.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
                        .accessibilityLabel(editing ? "Save edit" : "Send")
                }
            }
            .padding(8)
        }
    }
}

private struct Banner: View {
    let text: String
    var dismiss: (() -> Void)? = nil

    var body: some View {
        HStack {
            Text(text).font(.callout)
            Spacer()
            if let dismiss { Button("Dismiss", action: dismiss) }
        }
        .padding(10)
        .background(Color.orange.opacity(0.2))
    }
}

private struct MessageView: View {
    let message: ChatMessage
    let canRegenerate: Bool
    let canEdit: Bool
    let onRegenerate: () -> Void
    let onEdit: () -> Void
    @State private var thinkingOpen = false

    var body: some View {
        let user = message.author == .user
        HStack {
            if user { Spacer(minLength: 40) }
            VStack(alignment: .leading, spacing: 6) {
                if !message.thinking.isEmpty {
                    DisclosureGroup(isExpanded: $thinkingOpen) {
                        Text(message.thinking).font(.footnote).foregroundStyle(.secondary)
                    } label: {
                        Text("Thinking · \(message.thinkingTokens) tokens\(message.streaming && message.text.isEmpty ? "…" : "")").font(.caption)
                    }
                }
                ForEach(message.toolCards, id: \.callId) { card in ToolCardView(card: card) }
                if user {
                    Text(message.text)
                } else {
                    // Foundation's Markdown (inline syntax, whitespace kept); unfinished syntax
                    // while streaming shows as plain text.
                    Text(markdown(message.text + (message.streaming ? " ▍" : "")))
                        .textSelection(.enabled)
                }
                if let stats = message.stats {
                    Text(stats.summary).font(.caption2).foregroundStyle(.secondary)
                }
                if !message.streaming {
                    HStack(spacing: 16) {
                        Button { UIPasteboard.general.string = message.text } label: { Image(systemName: "doc.on.doc") }
                            .accessibilityLabel("Copy")
                        ShareLink(item: message.text) { Image(systemName: "square.and.arrow.up") }
                        if canRegenerate {
                            Button(action: onRegenerate) { Image(systemName: "arrow.clockwise") }.accessibilityLabel("Regenerate")
                        }
                        if canEdit {
                            Button(action: onEdit) { Image(systemName: "pencil") }.accessibilityLabel("Edit")
                        }
                    }
                    .font(.caption)
                    .buttonStyle(.borderless)
                }
            }
            .padding(12)
            .background(user ? Color.accentColor.opacity(0.15) : Color.secondary.opacity(0.1), in: RoundedRectangle(cornerRadius: 16))
            if !user { Spacer(minLength: 40) }
        }
    }

    private func markdown(_ text: String) -> AttributedString {
        let options = AttributedString.MarkdownParsingOptions(interpretedSyntax: .inlineOnlyPreservingWhitespace)
        return (try? AttributedString(markdown: text, options: options)) ?? AttributedString(text)
    }
}

private struct ToolCardView: View {
    let card: ToolCard

    var body: some View {
        VStack(alignment: .leading, spacing: 4) {
            Label("Tool · \(card.name)", systemImage: "wrench.and.screwdriver").font(.caption.bold())
            Text(card.argumentsJson).font(.caption.monospaced())
            if let error = card.error {
                Text("Failed: \(error)").font(.caption).foregroundStyle(.red)
            } else if let result = card.resultJson {
                Text("→ \(result)").font(.caption.monospaced())
            } else {
                ProgressView().controlSize(.small)
            }
        }
        .padding(8)
        .frame(maxWidth: .infinity, alignment: .leading)
        .background(Color.secondary.opacity(0.12), in: RoundedRectangle(cornerRadius: 10))
    }
}
