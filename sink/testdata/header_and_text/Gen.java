// Gen prints what Flume's HEADER_AND_TEXT serializer writes for the events of
// events.tsv: the headers of a java.util.HashMap filled in the file's order,
// printed by Map.toString, a space, the body, a newline. Run from this
// directory with: java Gen.java > expected.txt
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

public class Gen {
  public static void main(String[] args) throws IOException {
    OutputStream out = new BufferedOutputStream(System.out);
    for (String line : Files.readAllLines(Paths.get("events.tsv"), StandardCharsets.UTF_8)) {
      String[] f = line.split("\t", -1);
      Map<String, String> headers = new HashMap<>();
      for (int i = 1; i < f.length; i++) {
        int eq = f[i].indexOf('=');
        headers.put(f[i].substring(0, eq), f[i].substring(eq + 1));
      }
      out.write((headers + " ").getBytes(StandardCharsets.UTF_8));
      out.write(f[0].getBytes(StandardCharsets.UTF_8));
      out.write('\n');
    }
    out.flush();
  }
}
