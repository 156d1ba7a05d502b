"""Models of the demo shop: a catalogue, customers, orders and a large table of reviews."""

from django.db import models
from django.utils import timezone


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="products")
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=9, decimal_places=2)
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="orders")
    created = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"order {self.pk}"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_items")
    qty = models.PositiveIntegerField()
    # The unit price when ordered: the catalogue price may change afterwards.
    price = models.DecimalField(max_digits=9, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.qty} x {self.product_id}"


class Review(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reviews")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="reviews")
    rating = models.PositiveSmallIntegerField()
    body = models.TextField()
    # Deliberately NOT indexed (no db_index, no Meta.indexes): the slow report filters
    # reviews by `created`, and the resulting full table scan is the slow query the
    # demo exists to show. Adding an index here would hide it.
    created = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.rating}/5 for {self.product_id}"
