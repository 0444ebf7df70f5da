// Runs graphql-http's auditServer (the public GraphQL-over-HTTP audit)
// against one URL and prints one JSON line per audit: id, name, status
// ("ok", "warn", "error" or "notice") and the reason of a failure.
//
//   node audit.mjs <url> [bare|marked]
//
// "marked" sends GET requests with `apollo-require-preflight` (for a server
// that refuses every unmarked GET, as Apollo Router does); "bare" (the
// default) sends the audit's requests exactly as it writes them.
import { auditServer } from 'graphql-http';

const [url, mode = 'bare'] = process.argv.slice(2);
if (!url || !['bare', 'marked'].includes(mode)) {
  console.error('usage: node audit.mjs <url> [bare|marked]');
  process.exit(2);
}

function marked(input, init = {}) {
  const method = (init.method ?? 'GET').toUpperCase();
  if (method !== 'GET') return fetch(input, init);
  const headers = new Headers(init.headers);
  headers.set('apollo-require-preflight', 'true');
  return fetch(input, { ...init, headers });
}

const results = await auditServer({
  url,
  fetchFn: mode === 'marked' ? marked : fetch,
});
for (const result of results) {
  console.log(
    JSON.stringify({
      id: result.id,
      name: result.name,
      status: result.status,
      reason: result.status === 'ok' ? null : result.reason,
    }),
  );
}
