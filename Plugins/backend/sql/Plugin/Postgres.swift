import PluginKit

extension SQL {
    /// The PostgreSQL driver for `config`.
    static func postgres(_ config: Config, host: Host) throws -> any SQLDriver {
        throw PluginError(code: -32602, "/driver: postgres is not available in this build")
    }
}
