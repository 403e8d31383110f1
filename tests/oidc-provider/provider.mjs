// A real OpenID provider for registry-auth's tests: panva/oidc-provider (OpenID Certified),
// configured from a JSON file the test writes. It stands in for Google, a generic OIDC
// issuer, GitLab's OIDC side and a CI issuer (client-credentials JWTs).
//
//   node provider.mjs --port PORT --config FILE
//
// FILE (JSON):
//   {
//     "issuer": "http://127.0.0.1:PORT",           // optional, defaults to that
//     "clients": [ { "client_id", "client_secret", "redirect_uris": [...],
//                    "grant_types": [...], "extra_claims": {...} } ],
//     "users": { "<login>": { "email", "email_verified", "groups", "hd", "name", ... } },
//     "jwks": { "keys": [ private JWKs ] },         // optional: a fresh RSA key otherwise
//     "id_token_ttl": 3600, "access_token_ttl": 3600 // optional, seconds
//   }
//
// Logging in: the development login form accepts any password for a login listed in
// "users" (the password is not the point of these tests); consent is granted at once.
// Test controls (not part of OpenID), on the same port:
//   POST /test/disable/<login>   the account disappears: refresh grants fail from now on
//   POST /test/enable/<login>    it comes back
// Readiness: GET /.well-known/openid-configuration answers 200.
import { readFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

function arg(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) {
    console.error(`usage: node provider.mjs --port PORT --config FILE (missing --${name})`);
    process.exit(2);
  }
  return process.argv[i + 1];
}

const port = Number(arg('port'));
const config = JSON.parse(readFileSync(arg('config'), 'utf8'));
const issuer = config.issuer || `http://127.0.0.1:${port}`;
const users = config.users || {};
const disabled = new Set();

function freshJwks() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' }] };
}

const clientExtraClaims = {};
const clients = (config.clients || []).map((c) => {
  const { extra_claims: extra, ...client } = c;
  clientExtraClaims[client.client_id] = extra || {};
  return {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: client.grant_types && !client.grant_types.includes('authorization_code') ? [] : ['code'],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  };
});

const RESOURCE_SCOPES = 'registry';

const provider = new Provider(issuer, {
  clients,
  jwks: config.jwks || freshJwks(),
  cookies: { keys: [randomBytes(32).toString('hex')] },
  claims: {
    openid: ['sub'],
    // Google sends hd with the email scope.
    email: ['email', 'email_verified', 'hd'],
    profile: ['name', 'groups', 'preferred_username'],
    groups: ['groups'],
  },
  // Claims in the ID token itself, as Google and docker_auth's oidc_auth expect (the
  // default keeps them for the userinfo endpoint when an access token is issued).
  conformIdTokenClaims: false,
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', RESOURCE_SCOPES],
  pkce: { required: () => false },
  ttl: {
    IdToken: config.id_token_ttl || 3600,
    AccessToken: config.access_token_ttl || 3600,
    ClientCredentials: config.access_token_ttl || 600,
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A client-credentials request names its audience with `resource=`; the access
      // token is then a JWT signed with the provider's keys (what CI issuers hand out).
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => ({
        scope: RESOURCE_SCOPES,
        audience: resourceIndicator,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // Every client here is first-party: consent is granted without a page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid offline_access email profile groups');
    await grant.save();
    return grant;
  },
  async issueRefreshToken(_ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  async extraTokenClaims(_ctx, token) {
    return clientExtraClaims[token.clientId] || undefined;
  },
  async findAccount(_ctx, sub) {
    const user = users[sub];
    if (!user || disabled.has(sub)) {
      return undefined;
    }
    return {
      accountId: sub,
      async claims() {
        return { sub, ...user };
      },
    };
  },
});
provider.proxy = false;

const callback = provider.callback();
const server = createServer((req, res) => {
  const control = /^\/test\/(disable|enable)\/([^/]+)$/.exec(req.url);
  if (control && req.method === 'POST') {
    const login = decodeURIComponent(control[2]);
    if (control[1] === 'disable') disabled.add(login);
    else disabled.delete(login);
    res.writeHead(204).end();
    return;
  }
  callback(req, res);
});
server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
