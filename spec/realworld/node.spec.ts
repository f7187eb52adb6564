/** The corpus image `node`: a JavaScript runtime (Debian's nodejs with a small HTTP server), /app/data encrypted. The tests: ./suite.ts. */
import { corpusSuite } from './suite.js';
import { sconeTodo } from './status.js';

corpusSuite('node', { sconeTodo });
