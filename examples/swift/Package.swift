// swift-tools-version:5.9
// A command-line program that streams one agent turn, built on the Proliferate package.
import PackageDescription

let package = Package(
    name: "StreamTurn",
    dependencies: [.package(path: "../../bindings-swift")],
    targets: [
        .executableTarget(name: "stream-turn", dependencies: [.product(name: "Proliferate", package: "bindings-swift")],
                          path: "Sources/StreamTurn"),
    ]
)
