"""The napari face of the plugin: everything that imports napari or Qt lives here."""
