// GraphiQL formats its variables and headers editors (JSON with comments)
// with prettier's babel parser and estree printer: half a megabyte of
// JavaScript parser. This stands in for both, as one prettier plugin that
// formats with jsonc-parser (already in the bundle for the editors),
// keeping comments.
import { applyEdits, format } from 'jsonc-parser';

const FORMAT = 'grocery-jsonc';

export const parsers = {
  jsonc: {
    astFormat: FORMAT,
    parse: (text) => ({ type: 'jsonc', text, start: 0, end: text.length }),
    locStart: (node) => node.start,
    locEnd: (node) => node.end,
  },
};

export const printers = {
  [FORMAT]: {
    print(path) {
      const { text } = path.node;
      const edits = format(text, undefined, { tabSize: 2, insertSpaces: true, eol: '\n' });
      return applyEdits(text, edits).trim();
    },
  },
};
