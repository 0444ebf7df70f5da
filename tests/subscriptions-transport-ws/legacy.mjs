// Apollo's subscriptions-transport-ws client (WebSocket subprotocol
// graphql-ws) through the gateway: a query, one that does not validate, a
// connection refused (its token does not verify), then a subscription ended
// after its first event. One JSON line per outcome; exit 0 at the end, 2
// on an error the client reports.
//
//   node legacy.mjs <ws-url> <access-token> <order-id>
import transport from 'subscriptions-transport-ws';
import WebSocket from 'ws';

const { SubscriptionClient } = transport;
const [url, token, orderId] = process.argv.slice(2);
const print = (value) => console.log(JSON.stringify(value));
const fail = (err) => {
  console.error(`subscriptions-transport-ws error: ${JSON.stringify(err?.message ?? err)}`);
  process.exit(2);
};

/// Every result of `request` until it completes.
const results = (client, request) =>
  new Promise((resolve, reject) => {
    const all = [];
    client.request(request).subscribe({
      next: (result) => all.push(result),
      error: reject,
      complete: () => resolve(all),
    });
  });

try {
  const me = new SubscriptionClient(
    url,
    { connectionParams: { authorization: `Bearer ${token}` }, reconnect: false },
    WebSocket,
  );
  print({ query: await results(me, { query: '{ me { deviceId } }' }) });
  print({ invalid: await results(me, { query: '{ nope }' }) });
  const refused = await new Promise((resolve) => {
    const stranger = new SubscriptionClient(
      url,
      {
        connectionParams: { authorization: 'Bearer not-a-token' },
        reconnect: false,
        connectionCallback: (error) => {
          stranger.close();
          resolve(error ?? null);
        },
      },
      WebSocket,
    );
  });
  print({ refused });
  const query = `subscription($id: ID!) {
    orderStatusChanged(orderId: $id) { status legacy: previousStatus order { number } }
  }`;
  me.request({ query, variables: { id: orderId } }).subscribe({
    next: (event) => {
      print({ event });
      me.close();
      process.exit(0);
    },
    error: fail,
    complete: () => fail('the subscription completed before its event'),
  });
} catch (err) {
  fail(err);
}
