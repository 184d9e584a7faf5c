/** The typed client against the local stack (`npm start`): `npx tsx examples/client.ts`. */
import { createBisearchClient } from 'bisearch/client';

const api = createBisearchClient({ baseUrl: process.env.BISEARCH_URL ?? 'http://127.0.0.1:3000' });
// For a deployed stack: createBisearchClient({ baseUrl: '<QueryApiUrl>', signing: true })
const { data, error } = await api.POST('/search', {
  body: { query: 'how do I get a refund', k: 2, filter: { category: 'billing' } },
});
if (error) throw new Error(`${error.error.code}: ${error.error.message}`);
for (const result of data.results) console.log(result.docId, result.score.toFixed(3), result.title);
const page = await api.GET('/documents', { params: { query: { limit: 2, status: 'indexed' } } });
console.log(
  page.data?.documents.map((document) => document.docId),
  page.data?.nextCursor !== undefined,
);
