// swift-tools-version:5.9
// The Proliferate Swift package: the UniFFI bindings generated from the `proliferate-swift` crate
// plus a small hand-written layer. `scripts/test-swift` generates `Sources/proliferateFFI` and
// `Sources/Proliferate/Generated`, and links the static library with `-Xlinker -L<dir>`.
// `proliferate-replay` is the bindings' benchmark consumer (bench/src/bindings.rs), not a product.
import PackageDescription

let package = Package(
    name: "Proliferate",
    products: [
        .library(name: "Proliferate", targets: ["Proliferate"]),
    ],
    targets: [
        .systemLibrary(name: "proliferateFFI", path: "Sources/proliferateFFI"),
        .target(name: "Proliferate", dependencies: ["proliferateFFI"]),
        .executableTarget(name: "proliferate-replay", dependencies: ["Proliferate"], path: "Bench/replay"),
        .testTarget(name: "ProliferateTests", dependencies: ["Proliferate"]),
    ]
)
