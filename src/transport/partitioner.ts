/**
 * The partition a key goes to, as producers place it: Kafka's default partitioner (murmur2 of the
 * key, modulo the partition count), which the Java client, kafkajs's `DefaultPartitioner` and
 * librdkafka's `murmur2_random` share. The engine uses it to know which sensors left a partition
 * when partitions are added.
 *
 * @module
 */
import { Partitioners } from "kafkajs";

const partitioner = Partitioners.DefaultPartitioner();

/** The partition of `key` among `count` partitions. */
export function partitionOf(key: string, count: number): number {
  // The partitioner reads only the number of partitions from the metadata when a key is present.
  const partitionMetadata = Array.from({ length: count }, (_, i) => ({
    partitionId: i,
    leader: 0,
    partitionErrorCode: 0,
    replicas: [],
    isr: [],
  }));
  return partitioner({ topic: "", partitionMetadata, message: { key, value: null } });
}
