/// Container and SST files, shared by `flue init` and this repository's own `hello-agents`.
public enum DeploymentTemplates {
    /// Multi-stage Dockerfile for the executable `product`.
    public static func dockerfile(product: String) -> String {
        """
        # syntax=docker/dockerfile:1
        # \(product): a Flue for Swift server as a small runtime image.
        # Build: docker build -t \(product) .   Run: docker run -p 8080:8080 --env-file .env -e PORT=8080 \(product)

        # --- build stage: the official Swift toolchain builds a release binary with the static stdlib
        FROM swift:6.3-noble AS build
        WORKDIR /build
        # hadolint ignore=DL3008
        RUN apt-get update \\
            && apt-get install -y --no-install-recommends libsqlite3-dev \\
            && rm -rf /var/lib/apt/lists/*
        # Dependency resolution is its own layer: it reruns only when the manifest or lock file changes.
        # Commit Package.resolved in applications so every image build resolves the same versions.
        COPY Package.swift Package.resolved* ./
        RUN swift package resolve
        COPY . .
        RUN swift build -c release --product \(product) --static-swift-stdlib -Xlinker -s \\
            && install -D "$(swift build -c release --show-bin-path)/\(product)" /out/\(product)

        # --- runtime stage: the binary, CA certificates, SQLite and tini; nothing else
        FROM ubuntu:24.04
        # hadolint ignore=DL3008
        RUN apt-get update \\
            && apt-get install -y --no-install-recommends ca-certificates tini libsqlite3-0 \\
            && rm -rf /var/lib/apt/lists/* \\
            && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin flue
        COPY --from=build /out/\(product) /usr/local/bin/\(product)
        USER 10001:10001
        ENV PORT=\(ScaffoldOptions.containerPort)
        EXPOSE \(ScaffoldOptions.containerPort)
        # tini is PID 1: it forwards SIGTERM to the server (which drains and exits 0) and reaps children.
        ENTRYPOINT ["tini", "--", "/usr/local/bin/\(product)"]
        CMD ["serve"]

        """
    }

    /// Keeps build output, git history and local secrets out of the build context.
    public static let dockerignore = """
        .build
        .build-*
        .build_*
        .git
        .env
        .env.*
        .swiftpm
        *.sqlite
        *.sqlite-*

        """

    /// SST v3 configuration: VPC, cluster, Fargate service from the Dockerfile behind a load
    /// balancer, the provider key as a secret surfaced through `environment`, optional Postgres.
    public static func sstConfig(_ options: ScaffoldOptions) -> String {
        let port = ScaffoldOptions.containerPort
        let prefix = options.pascalName
        let postgres = options.database == .postgres
        let database =
            postgres
            ? """

                // Postgres in the VPC: state survives task restarts and is shared by every task.
                const db = new sst.aws.Postgres('\(prefix)Db', { vpc });

            """ : ""
        let link = postgres ? "[apiKey, apiTokens, db]" : "[apiKey, apiTokens]"
        let databaseURL =
            postgres
            ? "\n        DATABASE_URL: $interpolate`postgresql://${db.username}:${db.password}@${db.host}:${db.port}/${db.database}`,"
            : ""
        let scalingNote =
            postgres
            ? """
                    // Several tasks share the Postgres above; any task serves any run's stream.
                    // scaling: { min: 2, max: 4 },
              """
            : """
                    // More than one task needs shared state: scaffold with --database postgres first.
                    // scaling: { min: 2, max: 4 },
              """
        return """
            /// <reference path="./.sst/platform/config.d.ts" />

            // \(options.name): a Flue for Swift server on AWS Fargate (SST v3).
            // Deploy: sst secret set \(options.secretName) <key> --stage production
            //         sst secret set \(ScaffoldOptions.tokenSecretName) "$(openssl rand -hex 32)" --stage production   (clients send Authorization: Bearer <token>)
            //         sst deploy --stage production
            // Rotate tokens: set "<new>,<old>" and deploy, move clients to <new>, then set "<new>" alone and deploy.
            export default $config({
              app(input) {
                return {
                  name: '\(options.name)',
                  home: 'aws',
                  removal: input.stage === 'production' ? 'retain' : 'remove',
                };
              },
              async run() {
                const vpc = new sst.aws.Vpc('\(prefix)Vpc');
                const cluster = new sst.aws.Cluster('\(prefix)Cluster', { vpc });
                const apiKey = new sst.Secret('\(options.secretName)');
                // Bearer tokens for every Flue route: without them anyone who finds the URL runs agents on your key.
                const apiTokens = new sst.Secret('\(ScaffoldOptions.tokenSecretName)');
            \(database)
                const service = new sst.aws.Service('\(prefix)', {
                  cluster,
                  image: { context: '.', dockerfile: 'Dockerfile' },
                  loadBalancer: {
                    rules: [{ listen: '80/http', forward: '\(port)/http' }],
                    // HTTPS (tokens must not cross the internet in clear): with a domain SST manages
                    // (Route 53) it issues the certificate. Replace the rules above with these two and
                    // set PUBLIC_URL below to https://api.example.com.
                    // domain: 'api.example.com',
                    // rules: [
                    //   { listen: '80/http', redirect: '443/https' },
                    //   { listen: '443/https', forward: '\(port)/http' },
                    // ],
                    health: {
                      '\(port)/http': { path: '\(ScaffoldOptions.healthPath)' },
                    },
                  },
                  // Alternative: an ECS container health check instead of (or with) the load balancer's.
                  // health: { command: ['CMD-SHELL', 'curl -f http://localhost:\(port)\(ScaffoldOptions.healthPath) || exit 1'] },
                  link: \(link),
                  environment: {
                    \(options.keyVariable): apiKey.value,
                    API_TOKENS: apiTokens.value,
                    // PUBLIC_URL: 'https://api.example.com',   // with the HTTPS domain above
                    MODEL_SPECIFIER: '\(options.model)',\(databaseURL)
                    // Above the load balancer's idle timeout (below), so the balancer closes idle connections first.
                    KEEP_ALIVE_TIMEOUT_SECONDS: '3605',
                  },
            \(scalingNote)
                  transform: {
                    // A quiet `?wait=result` sends nothing until the run ends: raise the 60 s default idle
                    // timeout (SSE reads send heartbeats and long-polls answer within 30 s either way).
                    loadBalancer: (args) => {
                      args.idleTimeout = 3600;
                    },
                  },
                });

                return { url: service.url };
              },
            });

            """
    }
}
