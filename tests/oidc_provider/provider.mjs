// A test OpenID Connect provider: panva's oidc-provider (OpenID Certified) over HTTPS, with the
// accounts of a JSON file re-read at every look-up (a test changes a person's name, groups or
// state by rewriting it) and a login page of its own that checks their passwords.
//
//   node provider.mjs settings.json
//
// settings.json: {"cert": PEM path, "key": PEM path, "accounts": JSON path, "control": secret,
//                 "clients": [{client_id, client_secret, redirect_uris}]}
// accounts JSON: {"<login>": {"sub", "password", "disabled"?, "claims": {preferred_username,
//                 name, email, groups}}}; a disabled account is one the provider no longer
//                 knows, so its refresh tokens are refused.
// Listens on a free port of 127.0.0.1 and prints one line, {"issuer": "https://127.0.0.1:N"}.
// POST /test-control/revoke/<login> (header X-Control: the secret) ends that person's grants,
// as an administrator revoking their sessions at a real provider would.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';

import Provider from 'oidc-provider';

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = () => JSON.parse(readFileSync(settings.accounts, 'utf8'));
const grantsOf = new Map(); // sub -> grant ids given at consent, for the revocation above

function bySub(sub) {
  return Object.values(accounts()).find((account) => account.sub === sub);
}

async function findAccount(ctx, sub) {
  const account = bySub(sub);
  if (!account || account.disabled) return undefined;
  return {
    accountId: sub,
    async claims() {
      return { sub, ...bySub(sub).claims };
    },
  };
}

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, error = '') {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test provider: sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main>
<h1>Test identity provider</h1>
${error ? `<p role="alert" id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Login <input name="login" autocomplete="username" autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form>
<p><a id="cancel" href="/interaction/${escape(uid)}/abort">Cancel</a></p>
</main></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

function send(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(html);
}

let provider;

// The people of this provider trust Causerie: consent is given without a page, as a company's
// provider does for its own applications.
async function consent(req, res, interaction) {
  const { prompt: { details }, params, session: { accountId } } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  const grantId = await grant.save();
  if (!grantsOf.has(accountId)) grantsOf.set(accountId, new Set());
  grantsOf.get(accountId).add(grantId);
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

async function interaction(req, res, url) {
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'wrong interaction');
  if (action === 'abort') {
    const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  if (details.prompt.name === 'consent') return consent(req, res, details);
  if (action === 'login' && req.method === 'POST') {
    const form = await readForm(req);
    const account = accounts()[form.get('login') || ''];
    if (!account || account.disabled || account.password !== form.get('password')) {
      return send(res, 401, loginPage(uid, 'Invalid login or password.'));
    }
    const result = { login: { accountId: account.sub } };
    return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
  }
  return send(res, 200, loginPage(uid));
}

async function control(req, res, url) {
  if (req.method !== 'POST' || req.headers['x-control'] !== settings.control) return send(res, 403, 'no');
  const account = accounts()[url.pathname.split('/')[3]];
  for (const grantId of grantsOf.get(account?.sub) || []) {
    const grant = await provider.Grant.find(grantId);
    if (grant) await grant.destroy();
  }
  grantsOf.delete(account?.sub);
  return send(res, 200, 'revoked');
}

const server = https.createServer(
  { cert: readFileSync(settings.cert), key: readFileSync(settings.key) },
  (req, res) => {
    const url = new URL(req.url, 'https://127.0.0.1');
    let handled;
    if (url.pathname.startsWith('/interaction/')) handled = interaction(req, res, url);
    else if (url.pathname.startsWith('/test-control/')) handled = control(req, res, url);
    else return provider.callback()(req, res);
    handled.catch((error) => {
      console.error(error);
      if (!res.headersSent) send(res, 500, escape(error.message));
    });
  },
);

server.listen(0, '127.0.0.1', () => {
  const issuer = `https://127.0.0.1:${server.address().port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-run', use: 'sig', alg: 'RS256' };
  provider = new Provider(issuer, {
    clients: settings.clients.map((client) => ({
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
    })),
    findAccount,
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // The groups claim comes with the profile, as Keycloak's groups mapper or Entra ID's
    // "groups claim" add it without a scope of its own.
    claims: { openid: ['sub'], profile: ['name', 'preferred_username', 'groups'], email: ['email'] },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    // Every client must send PKCE (S256, the only method offered).
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false }, revocation: { enabled: true } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // A refresh token for every sign-in, as Keycloak gives one: the re-checks use it.
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // A new refresh token at every refresh, the old one spent (as Entra ID and Keycloak do): a
    // client that kept the old one would find its grant revoked at the next re-check.
    rotateRefreshToken: true,
  });
  provider.on('server_error', (ctx, error) => console.error(error));
  console.log(JSON.stringify({ issuer }));
});

for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
