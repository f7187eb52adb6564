/** The corpus image `flask`: a Python web application (Debian's python3-flask), /app/data encrypted. The tests: ./suite.ts. */
import { corpusSuite } from './suite.js';
import { sconeTodo } from './status.js';

corpusSuite('flask', { sconeTodo });
