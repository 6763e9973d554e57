package io.loyalty.contract;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.stream.Stream;
import loyalty.v1.TransactionCompleted;
import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.avro.message.SchemaStore;
import org.apache.avro.specific.SpecificData;
import org.apache.avro.specific.SpecificRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The engine's Avro contract as a Java consumer meets it: the shipped schema files parse with
 * Avro's own parser, the classes generated from them match, and records the engine encoded
 * (the golden corpus, one per event schema version) decode and re-encode byte for byte.
 */
class ContractSchemasTest {
  private static final Path SCHEMAS = Path.of(System.getProperty("loyalty.schemas"));
  private static final Path EVENTS = SCHEMAS.resolve("events");
  private static final Path HISTORY = SCHEMAS.resolve("history");
  private static final Path GOLDEN = Path.of(System.getProperty("loyalty.golden"));

  static Stream<Path> eventFiles() {
    return files(EVENTS, ".avsc").stream();
  }

  static Stream<Path> goldenFiles() {
    return files(GOLDEN, null).stream().flatMap(folder -> files(folder, ".avro").stream());
  }

  @ParameterizedTest
  @MethodSource("eventFiles")
  void eachEventSchemaParsesAloneWithAFreshParser(Path file) {
    Schema schema = parse(file);
    assertEquals(stem(file), schema.getFullName());
    assertEquals(Schema.Type.RECORD, schema.getType());
  }

  @Test
  void theOneTypeFilesParseInTheShippedOrderAndAgreeWithTheEventFiles() throws IOException {
    List<String> order = Files.readAllLines(SCHEMAS.resolve("parse-order.txt"));
    List<String> onDisk = files(SCHEMAS, ".avsc").stream().map(p -> p.getFileName().toString()).toList();
    assertEquals(new TreeSet<>(onDisk), new TreeSet<>(order), "parse-order.txt lists every file once");
    assertEquals(onDisk.size(), order.size(), "parse-order.txt lists every file once");

    // One parser, file by file: a type used before its file was read would fail here
    // (Avro 1.11: an undefined name; 1.12: an enum default checked against a placeholder).
    Schema.Parser parser = new Schema.Parser();
    for (String name : order) {
      parser.parse(SCHEMAS.resolve(name).toFile());
    }
    Map<String, Schema> types = parser.getTypes();
    for (Path file : eventFiles().toList()) {
      Schema alone = parse(file);
      assertEquals(alone, types.get(alone.getFullName()), alone.getFullName());
    }
  }

  @ParameterizedTest
  @MethodSource("eventFiles")
  void theGeneratedClassOfEachEventCarriesItsSchema(Path file) throws ReflectiveOperationException {
    Schema schema = parse(file);
    Class<?> generated = SpecificData.get().getClass(schema);
    assertNotNull(generated, schema.getFullName() + " has no generated class");
    Schema carried = (Schema) generated.getField("SCHEMA$").get(null);
    // Not equal as objects: stringType=String adds an "avro.java.string" property.
    assertEquals(schema.getFullName(), carried.getFullName());
    assertEquals(
        SchemaNormalization.parsingFingerprint64(schema),
        SchemaNormalization.parsingFingerprint64(carried));
  }

  @Test
  void aGeneratedClassReadsTheEngineRecordsWithJavaTypes() throws IOException {
    // By name, as a consumer writes it: logical types arrive as Instant and BigDecimal.
    Path golden = files(GOLDEN.resolve("loyalty.v1.TransactionCompleted"), ".avro").get(0);
    TransactionCompleted purchase = TransactionCompleted.getDecoder().decode(Files.readAllBytes(golden));
    Instant occurredAt = purchase.getOccurredAt();
    BigDecimal quantity = purchase.getLines().get(0).getQuantity();
    assertEquals(Instant.parse("2026-11-02T14:31:07Z"), occurredAt);
    assertEquals(new BigDecimal("2.000"), quantity);
    assertEquals("M-4471023", purchase.getMemberId());
  }

  @ParameterizedTest
  @MethodSource("goldenFiles")
  void everyGoldenRecordDecodesAndReencodesByteForByte(Path golden) throws IOException {
    byte[] bytes = Files.readAllBytes(golden);
    String event = golden.getParent().getFileName().toString();
    String fingerprint = stem(golden);

    // Single-object encoding: C3 01, the writer's CRC-64-AVRO fingerprint (little-endian), body.
    assertEquals((byte) 0xC3, bytes[0]);
    assertEquals((byte) 0x01, bytes[1]);
    assertEquals(fingerprint, HexFormat.of().formatHex(bytes, 2, 10));
    Schema writer = parse(version(event, fingerprint));
    assertEquals(fingerprint, littleEndianHex(SchemaNormalization.parsingFingerprint64(writer)));

    // Generic: read with the writer's own schema, write again, the same bytes.
    GenericRecord record = new BinaryMessageDecoder<GenericRecord>(GenericData.get(), writer).decode(bytes);
    ByteBuffer again = new BinaryMessageEncoder<GenericRecord>(GenericData.get(), writer).encode(record);
    assertArrayEquals(bytes, toArray(again));

    // Specific: the current generated class reads every recorded version (schema resolution
    // through a store of the history); the current version writes the same bytes back.
    Schema current = parse(EVENTS.resolve(event + ".avsc"));
    Class<?> generated = SpecificData.get().getClass(current);
    SpecificData model = SpecificData.getForClass(generated);
    SchemaStore.Cache history = new SchemaStore.Cache();
    for (Path version : files(HISTORY.resolve(event), ".avsc")) {
      history.addSchema(parse(version));
    }
    SpecificRecord decoded = new BinaryMessageDecoder<SpecificRecord>(model, current, history).decode(bytes);
    assertInstanceOf(generated, decoded);
    if (SchemaNormalization.parsingFingerprint64(current) == SchemaNormalization.parsingFingerprint64(writer)) {
      ByteBuffer written = new BinaryMessageEncoder<SpecificRecord>(model, current).encode(decoded);
      assertArrayEquals(bytes, toArray(written));
    }
  }

  private static Schema parse(Path file) {
    try {
      return new Schema.Parser().parse(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The newest recorded version of {@code event} with that fingerprint. */
  private static Path version(String event, String fingerprint) {
    List<Path> matching = new ArrayList<>();
    for (Path file : files(HISTORY.resolve(event), ".avsc")) {
      if (stem(file).endsWith("-" + fingerprint)) {
        matching.add(file);
      }
    }
    assertFalse(matching.isEmpty(), event + " has no recorded version " + fingerprint);
    return matching.get(matching.size() - 1);
  }

  /** The entries of {@code folder}, sorted; only files ending in {@code suffix} if given. */
  private static List<Path> files(Path folder, String suffix) {
    try (Stream<Path> entries = Files.list(folder)) {
      return entries
          .filter(p -> suffix == null ? Files.isDirectory(p) : p.toString().endsWith(suffix))
          .sorted()
          .toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static String stem(Path file) {
    String name = file.getFileName().toString();
    return name.substring(0, name.lastIndexOf('.'));
  }

  private static String littleEndianHex(long fingerprint) {
    return HexFormat.of().formatHex(
        ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(fingerprint).array());
  }

  private static byte[] toArray(ByteBuffer buffer) {
    byte[] out = new byte[buffer.remaining()];
    buffer.duplicate().get(out);
    return out;
  }
}
