// Placeholder so the target builds until the manifest code lands.
import Reports
