"""What is rendered: meshes, cameras, materials, lights and their parameters."""
