/** The corpus image `lighttpd`: a web server (Debian's lighttpd), /var/www/html encrypted. The tests: ./suite.ts. */
import { corpusSuite } from './suite.js';
import { sconeTodo } from './status.js';

corpusSuite('lighttpd', { sconeTodo });
