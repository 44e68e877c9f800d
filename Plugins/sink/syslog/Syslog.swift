#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import MCPGJSON
import PluginKit

/// Sends each ledger record to a syslog receiver as an RFC 5424 message, over UDP (RFC 5426: one datagram per
/// message, cut to `max_message_size` with the cut marked) or TCP (RFC 6587 octet counting, reconnecting with
/// backoff). `write` only formats and buffers: a slow or dead receiver never slows the gateway; what the bounded
/// buffer cannot hold is dropped, counted (`syslog_dropped_total`) and logged once per 10 s.
struct Syslog: SinkPlugin {
    struct Config: Decodable, Sendable {
        var address: String
        var transport: String?
        var facility: String?
        var appName: String?
        var hostname: String?
        var maxMessageSize: Int?
        var buffer: Int?
        var sdID: String?

        enum CodingKeys: String, CodingKey {
            case address, transport, facility, hostname, buffer
            case appName = "app_name"
            case maxMessageSize = "max_message_size"
            case sdID = "sd_id"
        }
    }

    static let name = "syslog"
    static let version = "1.0.0"
    static var configSchema: JSON {
        [
            "type": "object", "additionalProperties": false, "required": ["address"],
            "properties": [
                "address": [
                    "type": "string", "minLength": 3,
                    "description": "Receiver as \"host:port\" (an IPv6 literal in brackets: \"[::1]:514\").",
                ],
                "transport": [
                    "enum": ["udp", "tcp"],
                    "description": .string(
                        "udp (default): one datagram per message (RFC 5426); tcp: octet-counted frames (RFC 6587), "
                            + "reconnecting with backoff while records are buffered."),
                ],
                "facility": [
                    "enum": .array(SyslogFormat.facilities.keys.sorted().map { .string($0) }),
                    "description": "Syslog facility name (default local0).",
                ],
                "app_name": [
                    "type": "string", "minLength": 1, "maxLength": 48,
                    "description": "APP-NAME field (default mcpg); printable ASCII, other characters become _.",
                ],
                "hostname": [
                    "type": "string", "minLength": 1, "maxLength": 255,
                    "description": "HOSTNAME field (default: this machine's host name).",
                ],
                "max_message_size": [
                    "type": "integer", "minimum": 480, "maximum": 65000,
                    "description": .string(
                        "UDP only: largest datagram in bytes (default 2048). A longer message keeps its header and "
                            + "structured data, gets truncated=\"<full length>\" and a cut MSG."),
                ],
                "buffer": [
                    "type": "integer", "minimum": 1, "maximum": 1_000_000,
                    "description": "Messages held while the receiver is slow or down (default 10000); more are dropped and counted.",
                ],
                "sd_id": [
                    "type": "string", "pattern": "^[!#-<>-\\\\^-~]{1,32}$",
                    "description": "SD-ID of the structured data element (default mcpg@32473).",
                ],
            ],
        ]
    }

    let format: SyslogFormat
    let sender: SyslogSender

    init(config: Config, host: Host) throws {
        let transport = SyslogSender.Transport(rawValue: config.transport ?? "udp")
        guard let transport else { throw PluginError(code: -32602, "syslog: transport must be udp or tcp") }
        let facilityName = config.facility ?? "local0"
        guard let facility = SyslogFormat.facilities[facilityName] else {
            throw PluginError(code: -32602, "syslog: unknown facility \(facilityName)")
        }
        let (h, p) = try Self.split(config.address)
        format = SyslogFormat(
            facility: facility,
            hostname: SyslogFormat.printable(config.hostname ?? Self.machineName(), max: 255),
            appName: SyslogFormat.printable(config.appName ?? "mcpg", max: 48),
            procID: String(getpid()),
            sdID: config.sdID ?? "mcpg@32473",
            maxBytes: transport == .udp ? (config.maxMessageSize ?? 2048) : nil)
        do {
            sender = try SyslogSender(host: h, port: p, transport: transport, capacity: config.buffer ?? 10_000, log: host)
        } catch let e as PluginError {
            throw e
        } catch {
            throw PluginError(code: -32602, "syslog: address \(config.address): \(error)")
        }
    }

    func write(_ event: JSON) async throws {
        sender.enqueue(format.message(for: event))
    }

    /// `host:port` or `[v6]:port` into its parts.
    static func split(_ address: String) throws -> (String, String) {
        var host: Substring
        var port: Substring
        if address.hasPrefix("[") {
            guard let close = address.firstIndex(of: "]"), address[close...].hasPrefix("]:") else {
                throw PluginError(code: -32602, "syslog: address \(address) is not [ipv6]:port")
            }
            host = address[address.index(after: address.startIndex)..<close]
            port = address[address.index(close, offsetBy: 2)...]
        } else {
            guard let colon = address.lastIndex(of: ":") else {
                throw PluginError(code: -32602, "syslog: address \(address) has no :port")
            }
            host = address[..<colon]
            port = address[address.index(after: colon)...]
        }
        guard !host.isEmpty, let n = Int(port), n > 0, n < 65536 else {
            throw PluginError(code: -32602, "syslog: address \(address) is not host:port (port 1-65535)")
        }
        return (String(host), String(port))
    }

    static func machineName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "-" }
        let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }
}

@_cdecl("mcpg_plugin_v1")
public func mcpgPluginV1() -> UnsafeRawPointer { PluginExport.descriptor(for: Syslog.self) }
