/// <reference path="./.sst/platform/config.d.ts" />

// hello-agents: a Flue for Swift server on AWS Fargate (SST v3).
// Deploy: sst secret set AnthropicApiKey <key> --stage production
//         sst secret set ApiTokens "$(openssl rand -hex 32)" --stage production   (clients send Authorization: Bearer <token>)
//         sst deploy --stage production
// Rotate tokens: set "<new>,<old>" and deploy, move clients to <new>, then set "<new>" alone and deploy.
export default $config({
  app(input) {
    return {
      name: 'hello-agents',
      home: 'aws',
      removal: input.stage === 'production' ? 'retain' : 'remove',
    };
  },
  async run() {
    const vpc = new sst.aws.Vpc('HelloAgentsVpc');
    const cluster = new sst.aws.Cluster('HelloAgentsCluster', { vpc });
    const apiKey = new sst.Secret('AnthropicApiKey');
    // Bearer tokens for every Flue route: without them anyone who finds the URL runs agents on your key.
    const apiTokens = new sst.Secret('ApiTokens');

    // Postgres in the VPC: state survives task restarts and is shared by every task.
    const db = new sst.aws.Postgres('HelloAgentsDb', { vpc });

    const service = new sst.aws.Service('HelloAgents', {
      cluster,
      image: { context: '.', dockerfile: 'Dockerfile' },
      loadBalancer: {
        rules: [{ listen: '80/http', forward: '8080/http' }],
        // HTTPS (tokens must not cross the internet in clear): with a domain SST manages
        // (Route 53) it issues the certificate. Replace the rules above with these two and
        // set PUBLIC_URL below to https://api.example.com.
        // domain: 'api.example.com',
        // rules: [
        //   { listen: '80/http', redirect: '443/https' },
        //   { listen: '443/https', forward: '8080/http' },
        // ],
        health: {
          '8080/http': { path: '/health' },
        },
      },
      // Alternative: an ECS container health check instead of (or with) the load balancer's.
      // health: { command: ['CMD-SHELL', 'curl -f http://localhost:8080/health || exit 1'] },
      link: [apiKey, apiTokens, db],
      environment: {
        ANTHROPIC_API_KEY: apiKey.value,
        API_TOKENS: apiTokens.value,
        // PUBLIC_URL: 'https://api.example.com',   // with the HTTPS domain above
        MODEL_SPECIFIER: 'anthropic/claude-sonnet-4-6',
        DATABASE_URL: $interpolate`postgresql://${db.username}:${db.password}@${db.host}:${db.port}/${db.database}`,
        // Above the load balancer's idle timeout (below), so the balancer closes idle connections first.
        KEEP_ALIVE_TIMEOUT_SECONDS: '3605',
      },
      // Several tasks share the Postgres above; any task serves any run's stream.
      // scaling: { min: 2, max: 4 },
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
