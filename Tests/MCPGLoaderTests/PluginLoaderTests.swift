import Foundation
import Logging
import MCPGJSON
import MCPGLoader
import Testing

/// The loader's refusals, each by code and with a message naming the file, and the happy path.
@Suite struct PluginLoaderTests {
    let logs = LogStore()

    func loader(_ dir: TempDir, _ keys: [MinisignPublicKey]) -> PluginLoader {
        PluginLoader(directory: dir.path, trustedKeys: keys, logger: logs.logger())
    }

    /// Asserts that loading `name` fails with `code` and a message starting with the plugin's path.
    func expectRefusal(
        _ loader: PluginLoader, _ name: String, _ code: LoaderError.Code, containing text: String = "",
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let path = "\(loader.directory)/\(name).so"
        let e = #expect(throws: LoaderError.self, sourceLocation: sourceLocation) { try loader.load(name: name) }
        #expect(e?.code == code, "got \(String(describing: e))", sourceLocation: sourceLocation)
        #expect(e?.message.hasPrefix("\(path): ") == true, "message must name the file: \(String(describing: e))",
                sourceLocation: sourceLocation)
        if !text.isEmpty {
            #expect(e?.message.contains(text) == true, "\(String(describing: e))", sourceLocation: sourceLocation)
        }
    }

    @Test func loadsASignedPluginKitPlugin() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "anonymous", as: "anonymous")
        let pin = try signer.sign(path)
        #expect(pin == PluginPin(name: "anonymous", version: "1.0.0", abiMajor: 1))
        let l = loader(dir, signer.trusted)
        let p = try l.load(name: "anonymous")
        #expect(p.name == "anonymous")
        #expect(p.kindName == "identity")
        #expect(p.abiVersion >> 16 == 1)
        #expect(p.signerKeyID == signer.key.publicKey.keyIDHex)
        #expect(p.sha256 == sha256Hex(Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
        #expect(p.configSchema["type"] == "object")
        // Cached per name: the same descriptor, no second mapping.
        #expect(try l.load(name: "anonymous").descriptor == p.descriptor)
        #expect(logs.all.contains { $0.message == "plugin loaded" && $0.metadata["mcpg.plugin.name"] == "anonymous" })
        #expect(throws: LoaderError(.kindMismatch, "")) { try p.require(kind: "policy") }
        try p.require(kind: "identity")
    }

    @Test func pluginSignedByRealMinisignLoads() async throws {
        let dir = try TempDir()
        #expect(try await run(minisignPath, ["-G", "-W", "-p", dir.file("k.pub"), "-s", dir.file("k.key")]).status == 0)
        let path = try dir.install(product: "fixture_misbehave", as: "fixture_misbehave")
        let s = try await run(
            minisignPath, ["-S", "-s", dir.file("k.key"), "-m", path, "-t", "mcpg-plugin name=fixture_misbehave version=0.1.0 abi=1"])
        try #require(s.status == 0, "\(s.stderr)")
        let p = try loader(dir, [try MinisignPublicKey(contentsOfFile: dir.file("k.pub"))]).load(name: "fixture_misbehave")
        #expect(p.kindName == "backend")
        #expect(p.version == "0.1.0")
    }

    @Test func refusesMissingAndUnsignedFiles() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        expectRefusal(loader(dir, signer.trusted), "nothere", .notFound)
        _ = try dir.install(product: "anonymous", as: "anonymous")
        expectRefusal(loader(dir, signer.trusted), "anonymous", .unsigned, containing: "unsigned")
    }

    @Test func refusesTamperedFile() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "anonymous", as: "anonymous")
        try signer.sign(path)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[bytes.count / 2] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        expectRefusal(loader(dir, signer.trusted), "anonymous", .badSignature, containing: "tampered")
    }

    @Test func refusesUntrustedKey() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        try signer.sign(try dir.install(product: "anonymous", as: "anonymous"))
        let other = TestSigner()
        expectRefusal(
            loader(dir, other.trusted), "anonymous", .untrustedKey,
            containing: "signed by untrusted key \(signer.key.publicKey.keyIDHex)")
    }

    @Test func refusesEditedTrustedComment() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "anonymous", as: "anonymous")
        try signer.sign(path)
        let sig = try String(contentsOfFile: path + ".minisig", encoding: .utf8)
        _ = try dir.write("anonymous.so.minisig", sig.replacingOccurrences(of: "version=1.0.0", with: "version=9.9.9"))
        expectRefusal(loader(dir, signer.trusted), "anonymous", .badSignature, containing: "trusted comment")
    }

    @Test func refusesPinThatDisagreesWithTheDescriptor() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "anonymous", as: "anonymous")
        try signer.sign(path, pin: PluginPin(name: "anonymous", version: "2.0.0"))
        expectRefusal(loader(dir, signer.trusted), "anonymous", .versionMismatch, containing: "pins version 2.0.0")
        // A signature made without an mcpg pin (minisign's default trusted comment) is not enough.
        let key = signer.key
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        _ = try dir.write("anonymous.so.minisig", try key.sign(bytes, trustedComment: "timestamp:1\tfile:anonymous.so"))
        expectRefusal(loader(dir, signer.trusted), "anonymous", .badTrustedComment, containing: "mcpg-plugin name=")
    }

    @Test func refusesAFileInstalledUnderAnotherName() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        // Signed honestly as "anonymous", installed as rules.so: the name config asked for must be the plugin's.
        try signer.sign(try dir.install(product: "anonymous", as: "rules"))
        expectRefusal(loader(dir, signer.trusted), "rules", .nameMismatch, containing: "expected \"rules\"")
    }

    @Test func refusesWrongABIMajor() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "fixture_wrongabi", as: "fixture_wrongabi")
        // Honest pin (abi=2): refused from the signature alone, before mapping.
        try signer.sign(path, pin: PluginPin(name: "fixture_wrongabi", version: "2.0.0", abiMajor: 2))
        expectRefusal(loader(dir, signer.trusted), "fixture_wrongabi", .abiMismatch, containing: "plugin ABI 2")
        // Lying pin (abi=1): the descriptor itself is refused.
        try signer.sign(path, pin: PluginPin(name: "fixture_wrongabi", version: "2.0.0", abiMajor: 1))
        expectRefusal(
            loader(dir, signer.trusted), "fixture_wrongabi", .abiMismatch,
            containing: "built for plugin ABI 2, this mcpg speaks 1")
    }

    @Test func refusesMissingEntrySymbol() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "fixture_noentry", as: "fixture_noentry")
        try signer.sign(path, pin: PluginPin(name: "fixture_noentry", version: "0.1.0"))
        expectRefusal(loader(dir, signer.trusted), "fixture_noentry", .noEntrySymbol, containing: "mcpg_plugin_v1")
    }

    @Test func refusesSignedNonELFFile() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.write("notes.so", "this is a text file, signed but not a plugin\n")
        let text = try signer.key.sign(
            Array(try Data(contentsOf: URL(fileURLWithPath: path))), trustedComment: "mcpg-plugin name=notes version=1 abi=1")
        _ = try dir.write("notes.so.minisig", text)
        expectRefusal(loader(dir, signer.trusted), "notes", .notELF, containing: "not an ELF file")
        let v = #expect(throws: LoaderError.self) { try PluginLoader.verifyFile(path: path, trustedKeys: signer.trusted) }
        #expect(v?.code == .notELF)
    }

    @Test func createFailureIsSurfaced() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "fixture_createfails", as: "fixture_createfails")
        try signer.sign(path)
        let p = try loader(dir, signer.trusted).load(name: "fixture_createfails")
        let e = #expect(throws: LoaderError.self) {
            try PluginInstance.create(p, config: .object([:]), label: "sinks[0]", logger: logs.logger())
        }
        #expect(e?.code == .createFailed)
        #expect(e?.message.hasPrefix("\(path): ") == true)
        #expect(e?.message.contains("refusing to start: this fixture always fails") == true)
    }

    @Test func verifyFileChecksWithoutLoading() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "fixture_createfails", as: "fixture_createfails")
        try signer.sign(path)
        let v = try PluginLoader.verifyFile(path: path, trustedKeys: signer.trusted)
        #expect(v.pin == PluginPin(name: "fixture_createfails", version: "0.1.0"))
        #expect(v.signerKeyID == signer.key.publicKey.keyIDHex)
        #expect(v.prehashed)
        #expect(v.sha256.count == 64)
        // The built product's own name (lib<name>.so) is fine too.
        let lib = dir.file("libfixture_createfails.so")
        try FileManager.default.copyItem(atPath: path, toPath: lib)
        try FileManager.default.copyItem(atPath: path + ".minisig", toPath: lib + ".minisig")
        #expect(try PluginLoader.verifyFile(path: lib, trustedKeys: signer.trusted).pin.name == "fixture_createfails")
    }

    @Test func verifyFileRefusesAPinForAnotherPlugin() throws {
        let dir = try TempDir()
        let signer = TestSigner()
        let path = try dir.install(product: "anonymous", as: "anonymous")
        try signer.sign(path, pin: PluginPin(name: "rules", version: "1.0.0"))
        let e = #expect(throws: LoaderError.self) { try PluginLoader.verifyFile(path: path, trustedKeys: signer.trusted) }
        #expect(e?.code == .nameMismatch)
        #expect(e?.message.hasPrefix("\(path): signature pins plugin \"rules\"") == true)
        // Loading catches it too, from the descriptor.
        expectRefusal(loader(dir, signer.trusted), "anonymous", .nameMismatch, containing: "pins \"rules\"")
    }
}
