// The reference answer to the standard introspection query: graphql-js
// builds a schema from the SDL on stdin and answers
// getIntrospectionQuery() with every option on. Prints one JSON object:
// { query, data, version }.
//
//   node introspection.mjs < api.graphql
import { buildSchema, getIntrospectionQuery, graphqlSync, version } from 'graphql';
import { readFileSync } from 'node:fs';

const sdl = readFileSync(0, 'utf8');
const query = getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
});
const schema = buildSchema(sdl);
const result = graphqlSync({ schema, source: query });
if (result.errors) {
  console.error(JSON.stringify(result.errors));
  process.exit(1);
}
console.log(JSON.stringify({ query, data: result.data, version }));
