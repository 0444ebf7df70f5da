// The GraphiQL page of the gateway: every setting comes from the page's
// `#graphiql-config` JSON (the gateway writes it), so the bundle itself
// names no URL and needs no rebuild when the gateway's defaults change.
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { GraphiQL } from 'graphiql';
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import '@graphiql/react/style.css';
import '@graphiql/plugin-doc-explorer/style.css';
import '@graphiql/plugin-history/style.css';
import 'graphiql/graphiql.css';
import './page.css';

const config = JSON.parse(document.getElementById('graphiql-config').textContent);

// Monaco's workers are the gateway's own assets (classic scripts, same origin).
globalThis.MonacoEnvironment = {
  getWorker(_module, label) {
    return new Worker(config.workers[label] ?? config.workers.editor, { name: label });
  },
};

// Queries and mutations over HTTP POST, subscriptions over graphql-ws on the
// same URL (ws: or wss: as the page is http: or https:). The headers editor's
// content goes with every POST and, for a subscription, as its
// connection_init payload, where the gateway reads `authorization`.
const endpoint = new URL(config.endpoint, location.href);
const socket = new URL(endpoint);
socket.protocol = endpoint.protocol === 'https:' ? 'wss:' : 'ws:';
const fetcher = createGraphiQLFetcher({ url: endpoint.href, subscriptionUrl: socket.href });

createRoot(document.getElementById('graphiql')).render(
  createElement(GraphiQL, {
    fetcher,
    defaultQuery: config.defaultQuery,
    defaultHeaders: config.defaultHeaders,
    defaultEditorToolsVisibility: 'headers',
  }),
);
