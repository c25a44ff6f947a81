import FluePersistence
import Foundation
import NIOSSL
import PostgresNIO

/// A parsed `DATABASE_URL`: `postgresql://user:password@host:port/database?sslmode=require`.
public struct DatabaseURL: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String?
    /// libpq's `sslmode`: `disable`, `allow`/`prefer` (TLS when offered), `require` (TLS, no
    /// certificate check), `verify-ca`/`verify-full` (TLS with certificate checks). Default `prefer`.
    public var sslMode: String

    /// Parses the URL; throws `PersistenceError.unavailable` with a clear reason when malformed.
    public init(_ text: String) throws {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else {
            throw PersistenceError.unavailable("DATABASE_URL must look like postgresql://user:password@host:port/database")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PersistenceError.unavailable("DATABASE_URL has no host")
        }
        guard let user = components.user, !user.isEmpty else {
            throw PersistenceError.unavailable("DATABASE_URL has no user name")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = user.removingPercentEncoding ?? user
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        let path = components.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        self.database = path.isEmpty ? nil : path
        self.sslMode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer"
        guard ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
            throw PersistenceError.unavailable("DATABASE_URL sslmode \"\(sslMode)\" is not one of disable, allow, prefer, require, verify-ca, verify-full")
        }
    }

    /// The postgres-nio client configuration.
    public var clientConfiguration: PostgresClient.Configuration {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable":
            tls = .disable
        case "allow", "prefer":
            tlsConfiguration.certificateVerification = .none
            tls = .prefer(tlsConfiguration)
        case "require":
            tlsConfiguration.certificateVerification = .none
            tls = .require(tlsConfiguration)
        case "verify-ca":
            tlsConfiguration.certificateVerification = .noHostnameVerification
            tls = .require(tlsConfiguration)
        default:
            tls = .require(tlsConfiguration)
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}
