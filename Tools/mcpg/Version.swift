import ArgumentParser
import CMCPGPlugin

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print mcpg's version, plugin ABI version and build.")

    func run() {
        #if arch(x86_64)
        let arch = "x86_64"
        #elseif arch(arm64)
        let arch = "aarch64"
        #else
        let arch = "unknown"
        #endif
        print("mcpg \(mcpgVersion)")
        print("plugin ABI \(MCPG_ABI_MAJOR).\(MCPG_ABI_MINOR) (entry symbol \(MCPG_PLUGIN_ENTRY_SYMBOL))")
        print("built for linux-\(arch)")
    }
}
