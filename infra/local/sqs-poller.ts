import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';

export interface SqsPollerOptions {
  readonly sqs: SQSClient;
  readonly queueUrl: string;
  /** The Lambda handler the event source mapping invokes. */
  readonly handler: (event: SQSEvent) => Promise<SQSBatchResponse | undefined>;
  /** Messages per invocation (the stack's batch size). Default 10. */
  readonly batchSize?: number;
  /** Long-poll wait per receive, seconds. Default 1. */
  readonly waitSeconds?: number;
  readonly region?: string;
}

/**
 * What a Lambda SQS event source mapping does, on one machine: receive a batch, invoke the handler
 * with an `SQSEvent`, delete the messages it did not report as failed, and leave failed ones to
 * reappear after the visibility timeout (and reach the dead-letter queue after max receives).
 */
export class SqsPoller {
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(private readonly options: SqsPollerOptions) {}

  /** One receive → invoke → delete cycle. Returns how many messages were received and failed. */
  async pollOnce(waitSeconds = this.options.waitSeconds ?? 1): Promise<{ received: number; failed: number }> {
    const { sqs, queueUrl } = this.options;
    const response = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(this.options.batchSize ?? 10, 10),
        WaitTimeSeconds: waitSeconds,
        MessageSystemAttributeNames: ['All'],
        MessageAttributeNames: ['All'],
      }),
    );
    const messages = response.Messages ?? [];
    if (messages.length === 0) return { received: 0, failed: 0 };
    const arn = `arn:aws:sqs:${this.options.region ?? 'us-east-1'}:000000000000:${queueUrl.split('/').pop()}`;
    const records: SQSRecord[] = messages.map((message) => ({
      messageId: message.MessageId as string,
      receiptHandle: message.ReceiptHandle as string,
      body: message.Body ?? '',
      attributes: {
        ApproximateReceiveCount: message.Attributes?.ApproximateReceiveCount ?? '1',
        SentTimestamp: message.Attributes?.SentTimestamp ?? String(Date.now()),
        SenderId: message.Attributes?.SenderId ?? 'local',
        ApproximateFirstReceiveTimestamp:
          message.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
      },
      // As the event source mapping delivers them (camel-cased keys).
      messageAttributes: Object.fromEntries(
        Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
          name,
          {
            dataType: value.DataType ?? 'String',
            ...(value.StringValue !== undefined ? { stringValue: value.StringValue } : {}),
            stringListValues: [],
            binaryListValues: [],
          },
        ]),
      ),
      md5OfBody: message.MD5OfBody ?? '',
      eventSource: 'aws:sqs',
      eventSourceARN: arn,
      awsRegion: this.options.region ?? 'us-east-1',
    }));
    let failedIds: Set<string>;
    try {
      const result = await this.options.handler({ Records: records });
      failedIds = new Set((result?.batchItemFailures ?? []).map((failure) => failure.itemIdentifier));
    } catch {
      // A thrown handler fails the whole batch, as on Lambda.
      failedIds = new Set(records.map((record) => record.messageId));
    }
    const done = records.filter((record) => !failedIds.has(record.messageId));
    if (done.length > 0) {
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: queueUrl,
          Entries: done.map((record, index) => ({ Id: String(index), ReceiptHandle: record.receiptHandle })),
        }),
      );
    }
    return { received: records.length, failed: failedIds.size };
  }

  /** Poll continuously until {@link stop}. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        try {
          await this.pollOnce();
        } catch (error) {
          // One JSON line, like every other log of the stack.
          process.stderr.write(
            `${JSON.stringify({ level: 'ERROR', service: 'bisearch-local', message: 'ingest poller failed', error: (error as Error).message, timestamp: new Date().toISOString() })}\n`,
          );
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
