// A third-party client: the `graphql-ws` package subscribes to an order's
// status changes through the gateway and prints every event as one JSON
// line; it exits 0 after `count` events, non-zero on an error or an early end.
//
//   node subscribe.mjs <ws-url> <access-token> <order-id> <count>
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, orderId, count] = process.argv.slice(2);
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: () => console.log(JSON.stringify({ connected: true })) },
});

const query = `subscription($id: ID!) {
  orderStatusChanged(orderId: $id) {
    previousStatus
    status
    order { number total customer { deviceId } items { quantity product { name } } }
  }
}`;

let seen = 0;
client.subscribe(
  { query, variables: { id: orderId } },
  {
    next: (value) => {
      console.log(JSON.stringify(value));
      seen += 1;
      if (seen >= Number(count)) {
        client.dispose();
        process.exit(0);
      }
    },
    error: (err) => {
      console.error(`graphql-ws error: ${JSON.stringify(err?.message ?? err?.reason ?? err)}`);
      process.exit(2);
    },
    complete: () => {
      console.error(`the subscription completed after ${seen} of ${count} events`);
      process.exit(3);
    },
  },
);
