// A real Java client (spymemcached, KetamaConnectionFactory) driven by tests/scaleout.rs:
//
//   java -cp /usr/share/java/spymemcached.jar SpyClient.java SERVERS PREFIX COUNT
//
// SERVERS is "host:port host:port ..."; stores PREFIX<i> = v<i> for i in 0..COUNT through the
// default KetamaConnectionFactory (MD5 ketama, spymemcached's "ip:port-N" point names) and
// prints "ok N". Then prints "node KEY host:port" for the first 20 keys, as the client's own
// locator places them.

import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;
import net.spy.memcached.AddrUtil;
import net.spy.memcached.KetamaConnectionFactory;
import net.spy.memcached.MemcachedClient;

public class SpyClient {
    public static void main(String[] args) throws Exception {
        MemcachedClient client = new MemcachedClient(new KetamaConnectionFactory(), AddrUtil.getAddresses(args[0]));
        String prefix = args[1];
        int count = Integer.parseInt(args[2]);
        int ok = 0;
        for (int i = 0; i < count; i++) {
            if (client.set(prefix + i, 0, "v" + i).get(5, TimeUnit.SECONDS)) {
                ok++;
            }
        }
        System.out.println("ok " + ok);
        for (int i = 0; i < 20; i++) {
            InetSocketAddress at = (InetSocketAddress) client.getNodeLocator().getPrimary(prefix + i).getSocketAddress();
            System.out.println("node " + prefix + i + " " + at.getHostString() + ":" + at.getPort());
        }
        client.shutdown(5, TimeUnit.SECONDS);
    }
}
