// The graphql-sse package through the gateway, in the mode given: a query,
// one refused (its token does not verify), then a subscription ended after
// its first event. One JSON line per outcome; exit 0 at the end, 2 on an
// error the client reports (a broken protocol shows up here).
//
//   node sse.mjs <url> <access-token> <order-id> <distinct|single>
import { createClient } from 'graphql-sse';

const [url, token, orderId, mode] = process.argv.slice(2);
const print = (value) => console.log(JSON.stringify(value));
const client = (authorization) =>
  createClient({
    url,
    singleConnection: mode === 'single',
    retryAttempts: 0,
    headers: { authorization },
  });

/// Every result of `request`, until it completes.
async function results(c, request) {
  const all = [];
  for await (const result of c.iterate(request)) all.push(result);
  return all;
}

try {
  const me = client(`Bearer ${token}`);
  print({ query: await results(me, { query: '{ me { deviceId } }' }) });
  const stranger = client('Bearer not-a-token');
  print({ refused: await results(stranger, { query: '{ me { deviceId } }' }) });
  stranger.dispose();
  // An alias of its own: each client's subscription is one the gateway does not share.
  const query = `subscription($id: ID!) {
    orderStatusChanged(orderId: $id) { status ${mode}: previousStatus order { number } }
  }`;
  for await (const event of me.iterate({ query, variables: { id: orderId } })) {
    print({ event });
    break;
  }
  me.dispose();
  process.exit(0);
} catch (err) {
  console.error(`graphql-sse error: ${err?.message ?? JSON.stringify(err)}`);
  process.exit(2);
}
