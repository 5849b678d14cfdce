// Row ids: UUID version 7 (time-ordered). New rows land at the end of their indexes instead of at a
// random page each, which keeps the pages a commit must write few (a large share of SQLite's write cost).
export { v7 as newId } from 'uuid';
