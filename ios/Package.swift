// swift-tools-version:5.9
// Hearth for iOS and macOS. HearthFFI.xcframework (the Rust engine as static libraries plus the
// C header) is built by scripts/build-ios.sh on a Mac and is not committed.
import PackageDescription

let package = Package(
    name: "Hearth",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "Hearth", targets: ["Hearth"]),
    ],
    targets: [
        .binaryTarget(name: "HearthFFI", path: "HearthFFI.xcframework"),
        // Generated/Hearth.swift (uniffi, scripts/gen-bindings.sh) + the hand-written Swift API.
        .target(name: "Hearth", dependencies: ["HearthFFI"], path: "Sources/Hearth"),
    ]
)
