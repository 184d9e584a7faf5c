/** The LangChain retriever against the local stack (`npm start`): `npx tsx examples/retriever.ts`. */
import { BisearchRetriever } from 'bisearch/langchain';

const retriever = new BisearchRetriever({ url: process.env.BISEARCH_URL ?? 'http://127.0.0.1:3000', k: 2 });
// Deployed with IAM auth: new BisearchRetriever({ url: '<QueryApiUrl>', signing: true })
const documents = await retriever.invoke('my parcel has not arrived');
for (const document of documents)
  console.log(document.metadata.docId, document.metadata.score.toFixed(3), document.pageContent.slice(0, 60));
